"""Cluster resource templates: variables, substitution, rendering (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flyteadmin.core.cluster_resources import (
    ClusterResourceError,
    Template,
    apply_order,
    config_data,
    objects_digest,
    read_templates,
    render,
    substitute,
    templates_digest,
    variables_for,
)
from flyteadmin.core.config import ClusterResourceSettings, load_settings

QUOTA = """\
apiVersion: v1
kind: ResourceQuota
metadata:
  name: project-quota
  namespace: {{ namespace }}
  labels: {project: "{{project}}", domain: "{{  domain  }}"}
spec:
  hard:
    configmaps: "{{ configmaps }}"
    limits.memory: {{ memory }}
"""

MULTI = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: runner
---
apiVersion: v1
kind: Namespace
metadata:
  name: {{ namespace }}
---
"""


def values(**attribute):
    return variables_for(
        project="ml",
        domain="development",
        namespace="ml-development",
        attribute=attribute,
        domain_data={"memory": "8Gi", "configmaps": "10"},
        common_data={"memory": "1Gi", "region": "eu"},
    )


def test_reserved_names_and_precedence():
    v = values(configmaps="2")
    assert v["namespace"] == "ml-development" and v["project"] == "ml"
    assert v["domain"] == "development"
    assert v["configmaps"] == "2"  # the attribute wins over custom_data
    assert v["memory"] == "8Gi"  # custom_data wins over template_data
    assert v["region"] == "eu"


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("attribute", "CLUSTER_RESOURCE attribute of ml/development"),
        ("domain_data", "custom_data.development"),
        ("common_data", "template_data"),
    ],
)
def test_defining_a_reserved_name_is_an_error(source, where):
    kwargs = {"attribute": {}, "domain_data": {}, "common_data": {}}
    kwargs[source] = {"namespace": "kube-system"}
    with pytest.raises(ClusterResourceError, match=f"{where} defines the reserved") as exc:
        variables_for(project="ml", domain="development", namespace="ml-development", **kwargs)
    assert "namespace" in str(exc.value)


def test_render_substitutes_every_spelling_of_a_variable():
    (quota,) = render([Template("quota.yaml", QUOTA)], values(configmaps="1"))
    assert quota["metadata"] == {
        "name": "project-quota",
        "namespace": "ml-development",
        "labels": {"project": "ml", "domain": "development"},
    }
    assert quota["spec"]["hard"] == {"configmaps": "1", "limits.memory": "8Gi"}


def test_values_are_inserted_once_not_rendered_again():
    text, missing = substitute("a: {{ x }}", {"x": "{{ namespace }}", "namespace": "n"})
    assert text == "a: {{ namespace }}" and missing == []


def test_multi_document_files_and_empty_documents():
    objects = render([Template("a.yaml", MULTI), Template("b.yaml", QUOTA)], values())
    assert [o["kind"] for o in objects] == ["ServiceAccount", "Namespace", "ResourceQuota"]
    # Namespaces are applied first, the rest keeps template order.
    assert [o["kind"] for o in apply_order(objects)] == [
        "Namespace",
        "ServiceAccount",
        "ResourceQuota",
    ]


def test_undefined_variables_are_a_clear_error_naming_file_and_variables():
    templates = [Template("quota.yaml", QUOTA), Template("sa.yaml", "kind: {{ kind }} {{kind}}")]
    v = variables_for(
        project="ml",
        domain="staging",
        namespace="ml-staging",
        attribute={},
        domain_data={},
        common_data={},
    )
    with pytest.raises(ClusterResourceError) as exc:
        render(templates, v)
    message = str(exc.value)
    assert "quota.yaml: configmaps, memory" in message
    assert "sa.yaml: kind" in message
    assert "CLUSTER_RESOURCE attribute" in message


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a: [", "not valid YAML"),
        ("- just\n- a list\n", "expected a Kubernetes object"),
        ("kind: ConfigMap\nmetadata: {name: x}\n", "apiVersion is missing"),
        ("apiVersion: v1\nmetadata: {name: x}\n", "kind is missing"),
        ("apiVersion: ../v1\nkind: K\nmetadata: {name: x}\n", "invalid apiVersion"),
        ("apiVersion: v1\nkind: ConfigMap\n", "metadata.name is missing"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ''}\n", "metadata.name is empty"),
    ],
)
def test_documents_that_are_not_objects_are_errors(text, error):
    with pytest.raises(ClusterResourceError, match=error) as exc:
        render([Template("bad.yaml", text)], values())
    assert "bad.yaml" in str(exc.value)


def test_read_templates_takes_yaml_files_by_name_and_skips_configmap_internals(tmp_path):
    (tmp_path / "b.yml").write_text("b")
    (tmp_path / "a.yaml").write_text("a")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.yaml").write_text("x")
    data = tmp_path / "..2026_11_27"
    data.mkdir()
    (data / "c.yaml").write_text("c")
    (tmp_path / "c.yaml").symlink_to(data / "c.yaml")  # how a ConfigMap volume looks
    (tmp_path / "dir.yaml").mkdir()
    templates = read_templates(tmp_path)
    assert [(t.name, t.text) for t in templates] == [
        ("a.yaml", "a"),
        ("b.yml", "b"),
        ("c.yaml", "c"),
    ]
    before = templates_digest(templates)
    (tmp_path / "a.yaml").write_text("changed")
    assert templates_digest(read_templates(tmp_path)) != before


def test_missing_templates_directory_is_an_error(tmp_path):
    with pytest.raises(ClusterResourceError, match="cannot read the templates directory"):
        read_templates(tmp_path / "absent")


def test_config_data_reads_files_and_drops_one_trailing_newline(tmp_path):
    (tmp_path / "token").write_text("s3cr3t\n")
    cfg = ClusterResourceSettings(
        template_data={"a": "1"}, template_data_files={"token": str(tmp_path / "token")}
    )
    assert config_data(cfg) == {"a": "1", "token": "s3cr3t"}
    missing = ClusterResourceSettings(template_data_files={"t": str(tmp_path / "nope")})
    with pytest.raises(ClusterResourceError, match="template_data_files.t: cannot read"):
        config_data(missing)
    both = ClusterResourceSettings(template_data={"a": "1"}, template_data_files={"a": "/x"})
    with pytest.raises(ClusterResourceError, match="both template_data and template_data_files"):
        config_data(both)


def test_digest_follows_content_and_namespace():
    objects = render([Template("q.yaml", QUOTA)], values())
    assert objects_digest("n", objects) == objects_digest(
        "n", render([Template("q.yaml", QUOTA)], values())
    )
    assert objects_digest("n", objects) != objects_digest("m", objects)
    assert objects_digest("n", objects) != objects_digest(
        "n", render([Template("q.yaml", QUOTA)], values(configmaps="3"))
    )


def test_settings_from_yaml_and_environment(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "cluster_resources:\n  templates_dir: /etc/t\n  custom_data: {production: {cpu: '16'}}\n"
    )
    env = {"FLYTEADMIN__CLUSTER_RESOURCES__TEMPLATE_DATA": "{region: eu}"}
    cfg = load_settings(path, env).cluster_resources
    assert cfg.templates_dir == "/etc/t"
    assert cfg.custom_data == {"production": {"cpu": "16"}}
    assert cfg.template_data == {"region": "eu"}
    assert cfg.reapply_seconds == 600.0


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cluster-resources"


def test_the_example_templates_render_for_every_domain():
    settings = load_settings(EXAMPLES / "config.yaml", env={})
    cfg = settings.cluster_resources
    templates = read_templates(EXAMPLES.parents[1] / cfg.templates_dir)
    assert [t.name for t in templates] == ["resourcequota.yaml", "workloads.yaml"]
    for domain in settings.domain_ids():
        objects = render(
            templates,
            variables_for(
                project="flytesnacks",
                domain=domain,
                namespace=f"flytesnacks-{domain}",
                attribute={},
                domain_data=cfg.custom_data[domain],
                common_data=config_data(cfg),
            ),
        )
        assert [o["kind"] for o in objects] == ["ResourceQuota", "LimitRange", "ServiceAccount"]
        assert (
            objects[0]["spec"]["hard"]["limits.cpu"] == cfg.custom_data[domain]["projectQuotaCpu"]
        )
        assert objects[2]["metadata"]["labels"]["flyteadmin.io/domain"] == domain

{{/* Names, labels and the shared pieces of both Deployments. */}}

{{- define "flyteadmin.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-flyteadmin, or the release name alone when it already contains the chart name. */}}
{{- define "flyteadmin.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Namespace of the custom resources: config.kubernetes.namespace, else the release's. */}}
{{- define "flyteadmin.storeNamespace" -}}
{{- default .Release.Namespace .Values.config.kubernetes.namespace }}
{{- end }}

{{/* Labels of every object; call with (dict "root" $ "component" "api-server"). */}}
{{- define "flyteadmin.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "flyteadmin.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: flyteadmin
{{- end }}

{{- define "flyteadmin.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flyteadmin.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Prometheus' scrape annotations for a pod template, or nothing (metrics.scrapeAnnotations). */}}
{{- define "flyteadmin.scrapeAnnotations" -}}
{{- if .Values.metrics.scrapeAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.config.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{- define "flyteadmin.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Where the chart mounts files; each in its own folder (a mount point inside another
volume's read-only mount cannot be created). */}}
{{- define "flyteadmin.paths" -}}
config: /etc/flyteadmin/config
gcs: /etc/flyteadmin/gcs
auth: /etc/flyteadmin/auth
clusterResources: /etc/flyteadmin/cluster-resources
clusters: /etc/flyteadmin/clusters
{{- end }}

{{/* The rendered config.yaml: .Values.config with what the chart decides filled in: the store
namespace, the GCS key file and the auth folder when their Secrets are given, the templates
folder when templates are. */}}
{{- define "flyteadmin.config" -}}
{{- $paths := include "flyteadmin.paths" . | fromYaml }}
{{- $cfg := deepCopy .Values.config }}
{{- $_ := set $cfg.kubernetes "namespace" (include "flyteadmin.storeNamespace" .) }}
{{- with .Values.storage.credentialsSecret }}
{{- if .name }}
{{- $_ := set $cfg.storage "credentials_file" (printf "%s/%s" $paths.gcs .key) }}
{{- end }}
{{- end }}
{{- if include "flyteadmin.clusterResources" . }}
{{- $_ := set $cfg.cluster_resources "templates_dir" $paths.clusterResources }}
{{- end }}
{{- if and .Values.auth.secretName (hasKey $cfg.auth "secrets_dir") }}
{{- $_ := set $cfg.auth "secrets_dir" $paths.auth }}
{{- end }}
{{- with $cfg.execution_clusters }}
{{- $secrets := $.Values.executionClusters.kubeconfigSecrets }}
{{- range .clusters }}
{{- $secret := get $secrets .name }}
{{- if $secret }}
{{- $_ := set . "kubeconfig" (printf "%s/%s/%s" $paths.clusters .name ($secret.key | default "kubeconfig")) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* The operator's volumes and mounts of executionClusters.kubeconfigSecrets (one folder per
cluster), or empty lists; call with the root context. */}}
{{- define "flyteadmin.clusterVolumes" -}}
{{- $paths := include "flyteadmin.paths" . | fromYaml }}
{{- $volumes := list }}
{{- $mounts := list }}
{{- range $name, $secret := .Values.executionClusters.kubeconfigSecrets }}
{{- $key := $secret.key | default "kubeconfig" }}
{{- $volume := printf "cluster-%s" $name | replace "." "-" | trunc 63 | trimSuffix "-" }}
{{- $items := list (dict "key" $key "path" $key) }}
{{- $volumes = append $volumes (dict "name" $volume "secret" (dict "secretName" $secret.name "items" $items)) }}
{{- $mounts = append $mounts (dict "name" $volume "mountPath" (printf "%s/%s" $paths.clusters $name) "readOnly" true) }}
{{- end }}
volumes: {{ toJson $volumes }}
mounts: {{ toJson $mounts }}
{{- end }}

{{/* "true" when the chart ships cluster resource templates, else empty. */}}
{{- define "flyteadmin.clusterResources" -}}
{{- if and .Values.clusterResources.enabled (include "flyteadmin.templateFiles" . | fromYaml) }}true{{ end }}
{{- end }}

{{/* The non-null entries of clusterResources.templates (null drops a default file). */}}
{{- define "flyteadmin.templateFiles" -}}
{{- $files := dict }}
{{- range $name, $body := .Values.clusterResources.templates }}
{{- if $body }}
{{- $_ := set $files $name $body }}
{{- end }}
{{- end }}
{{- toYaml $files }}
{{- end }}

{{/* Whether propeller's admin ConfigMap is rendered ("true" or empty). */}}
{{- define "flyteadmin.propellerAdmin" -}}
{{- if or .Values.flytepropeller.enabled .Values.flytepropeller.deploy }}true{{ end }}
{{- end }}

{{/*
Refuse value combinations that would deploy a silently broken operator.
Kopf peering is not leader election: operators of the same priority that see each other all
pause (kopf 1.45 _core/engines/peering.py), so several replicas would stop processing.
*/}}
{{- define "flyteadmin.validate" -}}
{{- $clusters := dict }}
{{- range .Values.config.execution_clusters.clusters }}
{{- $_ := set $clusters .name true }}
{{- if not (or .in_cluster .kubeconfig (hasKey $.Values.executionClusters.kubeconfigSecrets .name)) }}
{{- fail (printf "execution cluster %s has no credentials: set in_cluster: true, or give executionClusters.kubeconfigSecrets.%s (a Secret holding its kubeconfig)" .name .name) }}
{{- end }}
{{- end }}
{{- range $name, $_ := .Values.executionClusters.kubeconfigSecrets }}
{{- if not (hasKey $clusters $name) }}
{{- fail (printf "executionClusters.kubeconfigSecrets.%s names no cluster of config.execution_clusters.clusters" $name) }}
{{- end }}
{{- end }}
{{- if gt (int .Values.operator.replicas) 1 }}
{{- fail "operator.replicas must be 1: Kopf peering is not leader election (replicas of the same priority all pause), so a second replica adds no availability. The operator is level-triggered and resyncs on restart; one replica with the Recreate strategy is the supported setup." }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) }}
{{- fail "metrics.serviceMonitor.enabled needs the Prometheus Operator's monitoring.coreos.com/v1 ServiceMonitor CRD in the cluster (with helm template, pass --api-versions monitoring.coreos.com/v1/ServiceMonitor), or use metrics.scrapeAnnotations." }}
{{- end }}
{{- if and .Values.config.operator.peering (not (.Capabilities.APIVersions.Has "kopf.dev/v1/KopfPeering")) }}
{{- fail "config.operator.peering is set but the cluster does not serve kopf.dev/v1 KopfPeering: apply Kopf's peering CRDs first (https://kopf.readthedocs.io/en/stable/peering/), or pass --api-versions kopf.dev/v1/KopfPeering to helm template, or leave config.operator.peering empty." }}
{{- end }}
{{- end }}

{{/*
Pod spec pieces shared by both Deployments; call with
(dict "root" $ "values" .Values.x "volumes" (list ...) "mounts" (list ...)) where volumes and
mounts are the component's own (besides config and tmp, and the values' extras).
*/}}
{{- define "flyteadmin.podCommon" -}}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "flyteadmin.fullname" .root }}-config
  - name: tmp
    emptyDir:
      sizeLimit: {{ .root.Values.tmpSizeLimit }}
  {{- with .volumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with .values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Container pieces shared by both Deployments (same arguments as podCommon). */}}
{{- define "flyteadmin.containerCommon" -}}
{{- $paths := include "flyteadmin.paths" .root | fromYaml -}}
image: {{ include "flyteadmin.image" .root }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
securityContext:
  {{- toYaml .root.Values.containerSecurityContext | nindent 2 }}
resources:
  {{- toYaml .values.resources | nindent 2 }}
volumeMounts:
  - name: config
    mountPath: {{ $paths.config }}
    readOnly: true
  - name: tmp
    mountPath: /tmp
  {{- with .mounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with .values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The GCS key Secret's volume and mount, or empty lists; call with the root context. */}}
{{- define "flyteadmin.gcsVolumes" -}}
{{- $paths := include "flyteadmin.paths" . | fromYaml }}
{{- with .Values.storage.credentialsSecret }}
{{- if .name }}
volumes:
  - name: gcs-credentials
    secret:
      secretName: {{ .name }}
      items:
        - key: {{ .key }}
          path: {{ .key }}
mounts:
  - name: gcs-credentials
    mountPath: {{ $paths.gcs }}
    readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{/* This release's gRPC endpoint as flytepropeller (or any in-cluster client) dials it. */}}
{{- define "flyteadmin.adminEndpoint" -}}
dns:///{{ include "flyteadmin.fullname" . }}.{{ .Release.Namespace }}.svc:{{ .Values.service.grpcPort }}
{{- end }}

{{/*
The flyteadmin.io plurals, and those with a status subresource, read from crds/ (generated from
core/crds.py), so the Roles follow the CRDs: {plurals: [...], status: [<plural>/status, ...]}.
*/}}
{{- define "flyteadmin.crdResources" -}}
{{- $plurals := list }}
{{- $status := list }}
{{- range $path, $_ := .Files.Glob "crds/*.yaml" }}
{{- $crd := $.Files.Get $path | fromYaml }}
{{- $plural := $crd.spec.names.plural }}
{{- $plurals = append $plurals $plural }}
{{- range $crd.spec.versions }}
{{- if and .storage (hasKey (dig "subresources" dict .) "status") }}
{{- $status = append $status (printf "%s/status" $plural) }}
{{- end }}
{{- end }}
{{- end }}
plurals: {{ toJson $plurals }}
status: {{ toJson $status }}
{{- end }}

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

{{- define "flyteadmin.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The rendered config.yaml: .Values.config with the store namespace filled in. */}}
{{- define "flyteadmin.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $_ := set $cfg.kubernetes "namespace" (include "flyteadmin.storeNamespace" .) }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Refuse value combinations that would deploy a silently broken operator.
Kopf peering is not leader election: operators of the same priority that see each other all
pause (kopf 1.45 _core/engines/peering.py), so several replicas would stop processing.
*/}}
{{- define "flyteadmin.validate" -}}
{{- if gt (int .Values.operator.replicas) 1 }}
{{- fail "operator.replicas must be 1: Kopf peering is not leader election (replicas of the same priority all pause), so a second replica adds no availability. The operator is level-triggered and resyncs on restart; one replica with the Recreate strategy is the supported setup." }}
{{- end }}
{{- if and .Values.config.operator.peering (not (.Capabilities.APIVersions.Has "kopf.dev/v1/KopfPeering")) }}
{{- fail "config.operator.peering is set but the cluster does not serve kopf.dev/v1 KopfPeering: apply Kopf's peering CRDs first (https://kopf.readthedocs.io/en/stable/peering/), or pass --api-versions kopf.dev/v1/KopfPeering to helm template, or leave config.operator.peering empty." }}
{{- end }}
{{- end }}

{{/* Pod spec pieces shared by both Deployments; call with (dict "root" $ "values" .Values.x). */}}
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

{{/* Container pieces shared by both Deployments. */}}
{{- define "flyteadmin.containerCommon" -}}
image: {{ include "flyteadmin.image" .root }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
securityContext:
  {{- toYaml .root.Values.containerSecurityContext | nindent 2 }}
resources:
  {{- toYaml .values.resources | nindent 2 }}
volumeMounts:
  - name: config
    mountPath: /etc/flyteadmin
    readOnly: true
  - name: tmp
    mountPath: /tmp
{{- end }}

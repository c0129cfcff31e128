{{/* Name of the release's objects, at most 52 characters (StatefulSet pod names add more). */}}
{{- define "demo-app.fullname" -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: never change between chart versions (selectors are immutable). */}}
{{- define "demo-app.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Common labels. */}}
{{- define "demo-app.labels" -}}
{{ include "demo-app.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The container image reference. */}}
{{- define "demo-app.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* storageClassName, only when one is configured (otherwise the cluster default applies). */}}
{{- define "demo-app.storageClass" -}}
{{- with .Values.persistence.storageClass -}}
storageClassName: {{ . | quote }}
{{- end -}}
{{- end -}}

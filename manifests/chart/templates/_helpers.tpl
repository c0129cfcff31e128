{{/* Image reference of every FluxUp container. */}}
{{- define "fluxup.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Labels of every object; "name" is the component. */}}
{{- define "fluxup.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: fluxup
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ .root.Chart.Name }}-{{ .root.Chart.Version }}
{{- end -}}

{{/* The operator's Kubernetes username (the webhook lets only it approve releases). */}}
{{- define "fluxup.operatorUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:fluxup-operator
{{- end -}}

{{/* A file from files/ (a copy of manifests/, kept equal by `make chart-sync`) with
     FluxUp's namespace replaced by the release's. */}}
{{- define "fluxup.manifest" -}}
{{ .root.Files.Get (printf "files/%s" .file) | replace "fluxup-system" .root.Release.Namespace }}
{{- end -}}

{{/* Pod template of the certificate Job and CronJob (`fluxup certs ensure`). */}}
{{- define "fluxup.certsPod" -}}
metadata:
  labels:
    {{- include "fluxup.labels" (dict "root" . "name" "fluxup-webhook-certs") | nindent 4 }}
spec:
  serviceAccountName: fluxup-webhook-certs
  restartPolicy: OnFailure
  securityContext: {{ toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: certs
      image: {{ include "fluxup.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - certs
        - ensure
        - --namespace={{ .Release.Namespace }}
        - --service=fluxup-webhook
        - --secret=fluxup-webhook-tls
        - --webhook-config=fluxup-gate
      resources:
        requests: {cpu: 10m, memory: 64Mi}
        limits: {memory: 128Mi}
      securityContext: {{ toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - {name: tmp, mountPath: /tmp}
  volumes:
    - {name: tmp, emptyDir: {}}
{{- end -}}

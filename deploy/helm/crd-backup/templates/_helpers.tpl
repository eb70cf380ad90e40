{{/* The release's full name: the release name when it contains the chart's, else release-chart. */}}
{{- define "crd-backup.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "crd-backup.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "crd-backup.labels" -}}
{{ include "crd-backup.selectorLabels" . }}
app.kubernetes.io/part-of: crd-backup
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "crd-backup.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "crd-backup.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: the existing ServiceAccount to run as (serviceAccount.create is false)" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "crd-backup.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{/* The filter flags and -l, one flag per entry (the CLI's flags are repeatable). */}}
{{- define "crd-backup.filterArgs" -}}
{{- $f := .Values.filters -}}
{{- range list "include-groups" "exclude-groups" "include-resources" "exclude-resources" "include-namespaces" "exclude-namespaces" }}
{{- $flag := . }}
{{- range (index $f (replace "-" "_" . | camelcase | untitle)) }}
- --{{ $flag }}={{ . }}
{{- end }}
{{- end }}
{{- with $f.selector }}
- --selector={{ . }}
{{- end }}
{{- end -}}

{{- define "crd-backup.retentionArgs" -}}
{{- $r := .Values.snapshot.retention -}}
{{- range list "keep-last" "keep-hourly" "keep-daily" "keep-weekly" "keep-monthly" "keep-yearly" }}
{{- $flag := . }}
{{- with (index $r (replace "-" "_" . | camelcase | untitle)) }}
- --{{ $flag }}={{ int64 . }}
{{- end }}
{{- end }}
{{- with $r.keepWithin }}
- --keep-within={{ . }}
{{- end }}
{{- end -}}

{{/* Storage options from the ConfigMap, credentials from the named Secret (none: workload identity). */}}
{{- define "crd-backup.envFrom" -}}
- configMapRef:
    name: {{ include "crd-backup.fullname" . }}
{{- with .Values.credentials.existingSecret }}
- secretRef:
    name: {{ . }}
{{- end }}
{{- end -}}

{{/* TMPDIR (the root filesystem is read-only) and the encryption recipients, never an identity. */}}
{{- define "crd-backup.env" -}}
# temporary files (the archive index, Node's compile cache): the root is read-only
- name: TMPDIR
  value: /tmp
{{- $e := .Values.encryption }}
{{- if and $e.recipientsConfigMap.name $e.recipientsSecret.name }}
{{- fail "encryption: give recipientsConfigMap or recipientsSecret, not both" }}
{{- end }}
{{- with $e.recipientsConfigMap.name }}
- name: CRD_BACKUP_ENCRYPT_TO
  valueFrom:
    configMapKeyRef: { name: {{ . }}, key: {{ $e.recipientsConfigMap.key }} }
{{- end }}
{{- with $e.recipientsSecret.name }}
- name: CRD_BACKUP_ENCRYPT_TO
  valueFrom:
    secretKeyRef: { name: {{ . }}, key: {{ $e.recipientsSecret.key }} }
{{- end }}
{{- end -}}

{{- define "crd-backup.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "crd-backup.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Scheduling and pull settings every pod shares. */}}
{{- define "crd-backup.podPlacement" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A pod template's metadata: component label, podLabels, podAnnotations. Call with (list . component). */}}
{{- define "crd-backup.podMetadata" -}}
{{- $ := index . 0 -}}
labels:
  {{- include "crd-backup.selectorLabels" $ | nindent 2 }}
  app.kubernetes.io/component: {{ index . 1 }}
  {{- with $.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $.Values.podAnnotations }}
annotations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Should the Prometheus Operator's objects be rendered? */}}
{{- define "crd-backup.monitoring" -}}
{{- $m := .Values.monitoring.enabled -}}
{{- if or (eq (toString $m) "true") (and (eq (toString $m) "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) -}}
true
{{- end -}}
{{- end -}}

{{/* Does any pod serve /metrics for a ServiceMonitor to scrape? */}}
{{- define "crd-backup.serves" -}}
{{- if or .Values.recorder.enabled (eq .Values.snapshot.mode "schedule") -}}
true
{{- end -}}
{{- end -}}

{{/* The recorder runs as its own ServiceAccount (its role adds watch), unless the chart creates none. */}}
{{- define "crd-backup.recorderServiceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- include "crd-backup.fullname" . }}-recorder
{{- else -}}
{{- include "crd-backup.serviceAccountName" . -}}
{{- end -}}
{{- end -}}

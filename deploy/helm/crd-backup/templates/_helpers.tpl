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
{{- if or .Values.recorder.enabled .Values.standby.enabled (eq .Values.snapshot.mode "schedule") -}}
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

{{/* The standby runs as its own ServiceAccount (its roles write), unless the chart creates none. */}}
{{- define "crd-backup.standbyServiceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- include "crd-backup.fullname" . }}-standby
{{- else -}}
{{- include "crd-backup.serviceAccountName" . -}}
{{- end -}}
{{- end -}}

{{/* "true" when a value matches one of the globs (the CLI's: `*` any run, `?` one character; entries may be comma-separated). Call with (list value globs). */}}
{{- define "crd-backup.globMatch" -}}
{{- $value := index . 0 -}}
{{- range index . 1 -}}
{{- range splitList "," . -}}
{{- $glob := trim . -}}
{{- if and $glob (regexMatch (printf "^%s$" (regexQuoteMeta $glob | replace "\\*" ".*" | replace "\\?" ".")) $value) -}}
true
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "true" when one of values passes include (if any) and none matches exclude, as src/snapshot/filters.ts. Call with (list values include exclude). */}}
{{- define "crd-backup.selected" -}}
{{- $values := index . 0 -}}
{{- $included := not (index . 1) -}}
{{- $excluded := false -}}
{{- range $values -}}
{{- if include "crd-backup.globMatch" (list . (index $ 1)) }}{{ $included = true }}{{ end -}}
{{- if include "crd-backup.globMatch" (list . (index $ 2)) }}{{ $excluded = true }}{{ end -}}
{{- end -}}
{{- if and $included (not $excluded) -}}
true
{{- end -}}
{{- end -}}

{{/*
The API groups the default roles read, as a JSON array: rbac.groups, or else the groups of the
cluster's CRDs that the filters select (Helm's lookup, at install and upgrade; nothing offline).
Never "" (the core group, with Secrets) nor "*": a CRD's group always has a dot, and the schema
refuses both in rbac.groups.
*/}}
{{- define "crd-backup.rbacGroups" -}}
{{- $groups := list -}}
{{- if .Values.rbac.groups -}}
{{- $groups = .Values.rbac.groups -}}
{{- else if not .Values.rbac.allGroups -}}
{{- $f := .Values.filters -}}
{{- $crds := lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" "" -}}
{{- range ($crds.items | default list) -}}
{{- $group := .spec.group -}}
{{- $plural := .spec.names.plural -}}
{{- if and (include "crd-backup.selected" (list (list $group) $f.includeGroups $f.excludeGroups)) (include "crd-backup.selected" (list (list (printf "%s.%s" $plural $group) $plural) $f.includeResources $f.excludeResources)) -}}
{{- $groups = append $groups $group -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $groups | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/* "true" when one of the rules grants reading core Secrets (get, list or watch, directly or by "*"). */}}
{{- define "crd-backup.readsSecrets" -}}
{{- range . -}}
{{- $groups := .apiGroups | default list -}}
{{- $resources := .resources | default list -}}
{{- $verbs := .verbs | default list -}}
{{- if and (or (has "" $groups) (has "*" $groups)) (or (has "secrets" $resources) (has "*" $resources)) (or (has "get" $verbs) (has "list" $verbs) (has "watch" $verbs) (has "*" $verbs)) -}}
true
{{- end -}}
{{- end -}}
{{- end -}}

{{/* --sign-key, when signing.keySecret names a Secret: the pods that write mount it (signVolume, signMount), no other pod does. */}}
{{- define "crd-backup.signArgs" -}}
{{- $k := .Values.signing.keySecret -}}
{{- if $k.name }}
- --sign-key=/etc/crd-backup/signing/{{ $k.key }}
{{- end }}
{{- end -}}

{{- define "crd-backup.signMount" -}}
{{- if .Values.signing.keySecret.name }}
- name: signing-key
  mountPath: /etc/crd-backup/signing
  readOnly: true
{{- end }}
{{- end -}}

{{- define "crd-backup.signVolume" -}}
{{- with .Values.signing.keySecret.name }}
- name: signing-key
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{/* The group that may read a mounted Secret's 0440 files, for a pod that mounts the signing key. */}}
{{- define "crd-backup.signFsGroup" -}}
{{- if .Values.signing.keySecret.name }}
# the signing key's Secret (0440) is readable by the group
fsGroup: 65532
{{- end }}
{{- end -}}

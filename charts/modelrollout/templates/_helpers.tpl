{{/*
Chart name, truncated to the 63 characters Kubernetes allows in a label value.
*/}}
{{- define "modelrollout.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name used as the prefix of every resource name.
*/}}
{{- define "modelrollout.fullname" -}}
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

{{/*
Name of the metrics Service; stays within 63 characters however long the release name is.
*/}}
{{- define "modelrollout.metricsServiceName" -}}
{{- printf "%s-metrics" (include "modelrollout.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/*
Value of the helm.sh/chart label.
*/}}
{{- define "modelrollout.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the operator Pod. Never change them: a Deployment's selector is immutable.
*/}}
{{- define "modelrollout.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelrollout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Standard labels of every object of the release.
*/}}
{{- define "modelrollout.labels" -}}
helm.sh/chart: {{ include "modelrollout.chart" . }}
{{ include "modelrollout.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelrollout
{{- end }}

{{/*
Name of the operator's ServiceAccount.
*/}}
{{- define "modelrollout.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelrollout.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Operator image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "modelrollout.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
Image of the replay Jobs; defaults to the operator image.
*/}}
{{- define "modelrollout.replayImage" -}}
{{- .Values.replay.image | default (include "modelrollout.image" .) }}
{{- end }}

{{/*
Namespaces watched in namespace scope, as a JSON list (use with fromJsonArray).
Defaults to the release namespace; duplicates are removed.
*/}}
{{- define "modelrollout.watchNamespaces" -}}
{{- if eq .Values.rbac.scope "namespace" }}
{{- .Values.watchNamespaces | default (list .Release.Namespace) | uniq | toJson }}
{{- else }}
{{- if .Values.watchNamespaces }}
{{- fail "watchNamespaces is only used with rbac.scope=namespace; empty it or set rbac.scope=namespace" }}
{{- end }}
{{- list | toJson }}
{{- end }}
{{- end }}

{{/*
Rules the operator needs, shared by the ClusterRole and the namespaced Roles.
Keep them in sync with the operator; no wildcards.
*/}}
{{- define "modelrollout.rbacRules" -}}
- apiGroups: ["modelrollout.io"]
  resources: ["modeldeployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["modelrollout.io"]
  resources: ["replaytests"]
  verbs: ["get", "list", "watch", "patch", "create", "delete"]
- apiGroups: ["modelrollout.io"]
  resources: ["modelversions"]
  verbs: ["get", "patch", "create"]
- apiGroups: ["modelrollout.io"]
  resources: ["modeldeployments/status", "replaytests/status", "modelversions/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps", "secrets"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "update", "patch"]
{{- end }}

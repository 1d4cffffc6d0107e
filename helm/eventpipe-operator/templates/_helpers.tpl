{{/* Names and labels shared by the templates. */}}
{{- define "eventpipe-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "eventpipe-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "eventpipe-operator.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "eventpipe-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "eventpipe-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "eventpipe-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventpipe-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "eventpipe-operator.labels" -}}
{{ include "eventpipe-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: eventpipe
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The namespaces the operator watches, one per line: the listed ones, else the release namespace.
     Empty when rbac.clusterWide (every namespace; an explicit choice). */}}
{{- define "eventpipe-operator.namespaces" -}}
{{- if and .Values.rbac.clusterWide .Values.watchNamespaces -}}
{{- fail "rbac.clusterWide and watchNamespaces exclude each other: watch every namespace or the listed ones" -}}
{{- end -}}
{{- if not .Values.rbac.clusterWide -}}
{{- range (.Values.watchNamespaces | default (list .Release.Namespace)) }}
{{ . }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The rules the handlers need on namespaced objects: nothing more (see operator/README.md, RBAC). */}}
{{- define "eventpipe-operator.namespacedRules" -}}
- apiGroups: [eventpipe.io]
  resources: [eventpipelines]
  verbs: [get, list, watch, patch]
- apiGroups: [eventpipe.io]
  resources: [eventpipelines/status]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [configmaps, services, serviceaccounts, persistentvolumeclaims]
  verbs: [get, list, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments/scale]
  verbs: [patch]
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, list, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors, podmonitors, prometheusrules]
  verbs: [get, list, create, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create]
{{- with .Values.rbac.catalogSecretNames }}
# Only the Secrets named here (spec.iceberg.catalogSecretRef of the pipelines), never every Secret.
- apiGroups: [""]
  resources: [secrets]
  resourceNames: {{ toJson . }}
  verbs: [get]
{{- end }}
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end -}}

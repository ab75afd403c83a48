{{/*
Standard helpers: names, labels, images, pod hardening and the URLs components give each other.
Every template names its objects "<fullname>-<component>" and labels them with
textops.labels (+ component), so `kubectl get all -l app.kubernetes.io/instance=RELEASE`
lists one release.
*/}}

{{/* The chart name, overridable with nameOverride. */}}
{{- define "textops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's base name: fullnameOverride, else the release name when it already contains the
chart name (release "textops" -> "textops"), else "<release>-<chart>". Truncated so that
"<fullname>-<component>" stays within 63 characters.
*/}}
{{- define "textops.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<component>", e.g. textops-operator. Call with (list $ "operator"). */}}
{{- define "textops.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "textops.fullname" $root) (index . 1) }}
{{- end }}

{{/* chart label value: name-version */}}
{{- define "textops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels a selector may use: they never change for the life of a release. */}}
{{- define "textops.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "textops.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* All labels of an object of a component. Call with (list $ "operator"). */}}
{{- define "textops.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "textops.chart" $root }}
{{ include "textops.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: textops
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
An image reference from {repository, tag, digest}; the tag defaults to the chart's appVersion
(for textops' own images). A digest, when set, wins: repository@sha256:...
Call with (list $ .Values.operator.image).
*/}}
{{- define "textops.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag | toString) }}
{{- end }}
{{- end }}

{{/* imagePullSecrets of every pod, from .Values.imagePullSecrets. */}}
{{- define "textops.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Pod-level security context: the global default (non-root, RuntimeDefault seccomp) merged
under the component's own settings (which win). Call with (list $ .Values.mysql).
*/}}
{{- define "textops.podSecurityContext" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- toYaml (mergeOverwrite (deepCopy $root.Values.podSecurityContext) (default dict $component.podSecurityContext)) }}
{{- end }}

{{/* Container security context: same merge, over .Values.containerSecurityContext. */}}
{{- define "textops.containerSecurityContext" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- toYaml (mergeOverwrite (deepCopy $root.Values.containerSecurityContext) (default dict $component.containerSecurityContext)) }}
{{- end }}

{{/* nodeSelector, tolerations and affinity of a component's pods. */}}
{{- define "textops.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The data volume of a stateful component: its PersistentVolumeClaim (or an existing claim)
when persistence is enabled, else an emptyDir (data lost with the pod: fine for trials).
Call with (list $ "mysql" .Values.mysql.persistence).
*/}}
{{- define "textops.dataVolume" -}}
{{- $root := index . 0 -}}
{{- $persistence := index . 2 -}}
- name: data
{{- if and $persistence.enabled $persistence.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ $persistence.existingClaim }}
{{- else if $persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "textops.componentName" (list $root (index . 1)) }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end }}

{{/*
The PersistentVolumeClaim of a component, when persistence is enabled without an existing
claim. Kept on `helm uninstall` (resource-policy keep): data outlives the release.
Call with (list $ "mysql" .Values.mysql.persistence).
*/}}
{{- define "textops.pvc" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $persistence := index . 2 -}}
{{- if and $persistence.enabled (not $persistence.existingClaim) }}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ include "textops.componentName" (list $root $component) }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "textops.labels" (list $root $component) | nindent 4 }}
  annotations:
    helm.sh/resource-policy: keep
spec:
  accessModes:
    {{- toYaml $persistence.accessModes | nindent 4 }}
  {{- if $persistence.storageClass }}
  {{- if eq "-" $persistence.storageClass }}
  storageClassName: ""
  {{- else }}
  storageClassName: {{ $persistence.storageClass }}
  {{- end }}
  {{- end }}
  resources:
    requests:
      storage: {{ $persistence.size }}
{{- end }}
{{- end }}

{{/* ------------------------------------------------------------ Secrets and credentials */}}

{{/*
Name of the Secret holding a component's credentials: its existingSecret, else the one this
chart generates ("<fullname>-<component>").
Call with (list $ "mysql" .Values.mysql.auth).
*/}}
{{- define "textops.secretName" -}}
{{- $root := index . 0 -}}
{{- $auth := index . 2 -}}
{{- default (include "textops.componentName" (list $root (index . 1))) $auth.existingSecret }}
{{- end }}

{{/*
A generated password that survives upgrades: the value already stored in the release's
Secret when there is one (looked up on the live cluster), else a new random one. `helm
template` and dry runs cannot look up, so they print a fresh random value.
Call with (list $ "<secret name>" "<key>").
*/}}
{{- define "textops.password" -}}
{{- $root := index . 0 -}}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace (index . 1) }}
{{- if and $existing (hasKey $existing.data (index . 2)) }}
{{- index $existing.data (index . 2) | b64dec }}
{{- else }}
{{- randAlphaNum 24 }}
{{- end }}
{{- end }}

{{/* ------------------------------------------------------------ URLs between components */}}

{{/* In-cluster DNS name of a component's Service: <fullname>-<component>.<ns>.svc */}}
{{- define "textops.serviceHost" -}}
{{- $root := index . 0 -}}
{{- printf "%s.%s.svc" (include "textops.componentName" (list $root (index . 1))) $root.Release.Namespace }}
{{- end }}

{{/*
The MLflow tracking URI: the override when set, else the chart's MLflow server (empty when
neither: the operator then keeps its own default). Call with (list $ override).
*/}}
{{- define "textops.mlflowUri" -}}
{{- $root := index . 0 -}}
{{- if index . 1 }}
{{- index . 1 }}
{{- else if $root.Values.mlflow.enabled }}
{{- printf "http://%s:%v" (include "textops.serviceHost" (list $root "mlflow")) $root.Values.mlflow.service.port }}
{{- end }}
{{- end }}

{{/* The Prometheus URL: the override, else the chart's server. Call with (list $ override). */}}
{{- define "textops.prometheusUrl" -}}
{{- $root := index . 0 -}}
{{- if index . 1 }}
{{- index . 1 }}
{{- else if $root.Values.prometheus.enabled }}
{{- printf "http://%s:%v" (include "textops.serviceHost" (list $root "prometheus")) $root.Values.prometheus.service.port }}
{{- end }}
{{- end }}

{{/* The S3 endpoint: the override, else the chart's MinIO. Call with (list $ override). */}}
{{- define "textops.s3Endpoint" -}}
{{- $root := index . 0 -}}
{{- if index . 1 }}
{{- index . 1 }}
{{- else if $root.Values.minio.enabled }}
{{- printf "http://%s:%v" (include "textops.serviceHost" (list $root "minio")) $root.Values.minio.service.port }}
{{- end }}
{{- end }}

{{/* The operator's ServiceAccount name. */}}
{{- define "textops.operatorServiceAccount" -}}
{{- default (include "textops.componentName" (list . "operator")) .Values.operator.serviceAccount.name }}
{{- end }}

{{/*
The Secret holding the label store's URL (key url) and the labelling API's token (key token):
labelStore.existingSecret, else the one this chart generates on its MySQL; empty when the
label store is off. Fails when it is on with neither.
*/}}
{{- define "textops.labelStoreSecret" -}}
{{- $ls := .Values.labelStore -}}
{{- if $ls.enabled -}}
{{- if $ls.existingSecret -}}
{{- $ls.existingSecret -}}
{{- else if .Values.mysql.enabled -}}
{{- include "textops.componentName" (list . "labels") -}}
{{- else -}}
{{- fail "labelStore.enabled needs a database: enable mysql, or set labelStore.existingSecret" -}}
{{- end -}}
{{- end -}}
{{- end }}

# Dev Kubernetes cluster (etcd + kube-apiserver + controller-manager + scheduler + kwok).
# Included from the main Makefile, which defines PY (the venv python) and STAMP (the venv
# install stamp) before the include. See docs/cluster.md.
export TEXTOPS_HOME ?= $(CURDIR)/.textops

.PHONY: cluster-tools cluster-up cluster-down cluster-status

cluster-tools: ## Build/cache kube-apiserver, controller-manager, scheduler, kubectl, etcd, kwok, helm
	bash scripts/build-k8s-tools.sh

cluster-up: $(STAMP) cluster-tools ## Start the dev cluster; admin kubeconfig in TEXTOPS_HOME/cluster/
	$(PY) -m textops.devcluster up

cluster-down: $(STAMP) ## Stop the dev cluster started by cluster-up (pids kept in TEXTOPS_HOME/cluster/)
	$(PY) -m textops.devcluster down

cluster-status: $(STAMP) ## Show whether the dev cluster's processes are running
	$(PY) -m textops.devcluster status

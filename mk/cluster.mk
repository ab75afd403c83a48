# Dev Kubernetes cluster: etcd, kube-apiserver, controller-manager, scheduler and a real node
# (containerd, runc, kubelet, kube-proxy, CoreDNS, a local-path provisioner) running the
# project's images; kwok's fake nodes on request.
# Included from the main Makefile, which defines PY (the venv python) and STAMP (the venv
# install stamp) before the include. See docs/cluster.md.
export TEXTOPS_HOME ?= $(CURDIR)/.textops

.PHONY: cluster-tools cluster-up cluster-down cluster-status cluster-demo

cluster-tools: ## Build/cache the control plane, kubelet, kube-proxy, containerd, runc, CNI, CoreDNS, etcd, kwok, helm, Prometheus
	bash scripts/build-k8s-tools.sh

cluster-up: $(STAMP) cluster-tools images ## Start the dev cluster with a real node running the images; admin kubeconfig in TEXTOPS_HOME/cluster/
	$(PY) -m textops.devcluster up

cluster-down: $(STAMP) ## Stop the dev cluster; fails unless no process, mount, device, iptables chain or cgroup of it is left
	$(PY) -m textops.devcluster down

cluster-status: $(STAMP) ## Show whether the dev cluster's processes are running
	$(PY) -m textops.devcluster status

cluster-demo: cluster-up ## The demo's loop in the cluster: helm install, v1 by a Job, drift → the operator retrains, promotes, rolls out; the cluster stays up
	$(PY) -m textops.demo.in_cluster

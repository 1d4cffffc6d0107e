# eventpipe: the two commands of the README, plus the pieces they are made of.
.PHONY: run test bench bench-long lint core venvs clean images cluster-up cluster-down kind-up kind-down

run:   ## run the pipeline on embedded defaults (no cloud, no Docker)
	scripts/run.sh

test:  ## the whole test suite, as CI runs it
	scripts/test.sh

bench: ## benchmarks (results go to docs/benchmarks.md)
	scripts/bench.sh

bench-long: ## freshness that lasts: 30 minutes at 10k events/s with table maintenance beside the writers
	scripts/bench.sh freshness-long

lint:
	scripts/test.sh python-lint

core:  ## build the Rust core wheel
	scripts/build-core.sh

venvs:
	scripts/venv.sh services && scripts/venv.sh analytics && scripts/venv.sh operator && scripts/venv.sh airflow

clean:
	rm -rf .venvs .eventpipe

images: ## build the container images with podman (no Docker needed), cached by input hash
	scripts/images.sh build

cluster-up: ## a real single-node Kubernetes cluster without Docker (scripts/cluster.sh)
	scripts/cluster.sh up

cluster-down:
	scripts/cluster.sh down

KIND_IMAGES = services operator

kind-up: ## a kind cluster (needs Docker and kind) with the images built and loaded, and the operator chart
	kind create cluster --config kind.yaml
	for i in $(KIND_IMAGES); do docker build -f envs/$$i.Dockerfile -t ghcr.io/eventpipe/$$i:0.1.0 . && \
	  kind load docker-image --name eventpipe ghcr.io/eventpipe/$$i:0.1.0 || exit 1; done
	helm install eventpipe helm/eventpipe-operator -n eventpipe-system --create-namespace --set replicaCount=1

kind-down:
	kind delete cluster --name eventpipe

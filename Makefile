# eventpipe: the two commands of the README, plus the pieces they are made of.
.PHONY: run test bench lint core venvs clean

run:   ## run the pipeline on embedded defaults (no cloud, no Docker)
	scripts/run.sh

test:  ## the whole test suite, as CI runs it
	scripts/test.sh

bench: ## benchmarks (results go to docs/benchmarks.md)
	scripts/bench.sh

lint:
	scripts/test.sh python-lint

core:  ## build the Rust core wheel
	scripts/build-core.sh

venvs:
	scripts/venv.sh services && scripts/venv.sh analytics && scripts/venv.sh operator && scripts/venv.sh airflow

clean:
	rm -rf .venvs .eventpipe

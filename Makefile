# FogScheduler. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
SERVICES := scripts/services.sh
PROFILE ?= dev

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: build
build: install ## Build every product (debug)
	swift build

.PHONY: release
release: install ## Build every product (release)
	swift build -c release

.PHONY: install
install: ## Install the Debian packages the build and the local services need, when missing
	@$(SERVICES) install

.PHONY: test
test: ## Install what is missing, build, start the test services, run every test, stop them
	scripts/test.sh

.PHONY: services-up
services-up: ## Start RabbitMQ (3 nodes), Redis and PostgreSQL on loopback (PROFILE=dev|test); print the FOG_* URLs
	$(SERVICES) up --profile $(PROFILE)

.PHONY: services-down
services-down: ## Stop the local services started by services-up (by their recorded PIDs)
	$(SERVICES) down --profile $(PROFILE)

.PHONY: services-status
services-status: ## Show which local services run, with their PIDs and ports
	$(SERVICES) status --profile $(PROFILE)

.PHONY: services-env
services-env: ## Print the FOG_* variables of the local services (to source into a shell)
	@$(SERVICES) env --profile $(PROFILE)

.PHONY: services-wipe
services-wipe: ## Stop the local services and delete their data, logs and generated secrets
	$(SERVICES) wipe --profile $(PROFILE)

.PHONY: bench-clients
bench-clients: ## Benchmark AMQPClient's confirmed publish and consume against pika, same run, same queue
	scripts/bench-clients.sh

.PHONY: demo demo-down install-fog-node check
demo: ## Install what is missing, start the services, build, run the scheduler and 3 fog nodes, submit sample work, show the result
	scripts/demo.sh up

demo-down: ## Stop the demo's scheduler and fog nodes and the dev services
	scripts/demo.sh down

install-fog-node: ## Install the fog node on this edge host: binary in /usr/local/bin, systemd unit, env file
	scripts/install-fog-node.sh

check: build ## Check that the dev services answer, as the scheduler would (FOG_* from services-env)
	@source <($(SERVICES) env --profile $(PROFILE)) && .build/debug/scheduler check

.PHONY: simulate experiment bench-sim
simulate: ## Compare every placement policy over scenarios/*.json (10 seeds each); table, and a chart in docs/placement.svg
	swift build -c release --product scheduler
	.build/release/scheduler simulate scenarios/*.json --seeds 10 --plot docs/placement.svg

experiment: install ## Compare the placement policies on the real local system (bench services, 4 fog nodes); prints a table
	scripts/experiment.sh

bench-sim: ## Time the simulator: 100,000 tasks on 50 nodes, each policy, release build
	swift build -c release --product scheduler
	.build/release/scheduler simulate scenarios/bench/large.json --timing

.PHONY: clean
clean: ## Remove build products
	swift package clean

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

.PHONY: clean-build
clean-build: ## Remove build products
	swift package clean

# --- Docker Swarm (issue [6/9], in progress: deploy/SWARM-STATUS.md) ---
# Without DOCKER_HOST, these use the private engine of scripts/swarm-engine.sh.
SWARM := scripts/swarm.sh
FOG_TARGET ?= swarm

.PHONY: engine-up engine-down images up down restart status health logs logs-follow clean
engine-up: ## Start a private Docker engine and single-node Swarm on this machine (shared/SWARM.md)
	scripts/swarm-engine.sh up

engine-down: ## Remove the private engine and everything it made; the host is left as it was
	scripts/swarm-engine.sh down

images: engine-up ## Build every image without a registry (debootstrap base, static binaries)
	$(SWARM) images

up: ## Deploy the stack from .env (refuses missing or example secrets) and wait until healthy
	$(SWARM) up

down: ## Remove the stack (volumes kept)
	$(SWARM) down

restart: down up ## Remove and deploy the stack again

status: ## The stack's services and their replicas
	@DOCKER_HOST=$${DOCKER_HOST:-unix:///var/tmp/fogscheduler/swarm/docker.sock} docker service ls

health: ## One ✓/✗ line per component (FOG_TARGET=local: the local services); non-zero on any ✗
ifeq ($(FOG_TARGET),local)
	@$(SERVICES) status --profile $(PROFILE)
else
	@$(SWARM) health
endif

logs: ## The last 100 lines of every service's log
	@for s in rabbitmq1 rabbitmq2 rabbitmq3 redis postgres scheduler fog-node; do \
	  DOCKER_HOST=$${DOCKER_HOST:-unix:///var/tmp/fogscheduler/swarm/docker.sock} docker service logs --tail 100 fog_$$s 2>&1; done

logs-follow: ## Follow the scheduler's and fog nodes' logs
	DOCKER_HOST=$${DOCKER_HOST:-unix:///var/tmp/fogscheduler/swarm/docker.sock} docker service logs -f fog_scheduler & \
	DOCKER_HOST=$${DOCKER_HOST:-unix:///var/tmp/fogscheduler/swarm/docker.sock} docker service logs -f fog_fog-node; wait

clean: down ## Remove the stack, its volumes and the generated secrets
	@DOCKER_HOST=$${DOCKER_HOST:-unix:///var/tmp/fogscheduler/swarm/docker.sock} sh -c \
	  'docker volume ls -q -f label=com.docker.stack.namespace=fog | xargs -r docker volume rm >/dev/null'
	rm -rf /var/tmp/fogscheduler/swarm/secrets

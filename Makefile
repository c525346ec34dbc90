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
release: install ## Build every product (release, the Swift runtime linked in, as in the images)
	@# One product at a time: a build of every target would take in TestSupport, which needs Testing.
	for product in scheduler fog-node clusterctl fog-bench; do \
	  swift build -c release --static-swift-stdlib --product $$product || exit 1; done

.PHONY: lint
lint: ## shellcheck every script, swift format lint the sources, and hold the module graph against tools/architecture.json
	scripts/lint.sh

.PHONY: check-architecture
check-architecture: release ## Hold the module graph and each binary's C libraries against tools/architecture.json
	tools/check-architecture --binaries .build/release

.PHONY: install
install: ## Install the Debian packages the build and the local services need, when missing
	@$(SERVICES) install

.PHONY: test
test: ## Install what is missing, build, start the test services, run every test, stop them
	scripts/test.sh

.PHONY: test-security
test-security: ## The attacks of THREATS.md against real processes (docs/SECURITY.md): each must fail to do harm
	scripts/test.sh --security

.PHONY: test-chaos
test-chaos: ## Nine faults in turn under a load of 5,400 tasks; executions counted from the tasks' own marks; table to docs/CHAOS.md (about 6 min)
	scripts/test.sh --chaos

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

.PHONY: bench bench-clients
bench: install ## Speed: broker limit, 20,000 no-ops end to end, open-loop latency at 25-2,000/s, node kill, CPU and memory per process (docs/BENCHMARKS.md)
	scripts/bench.sh

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
simulate: install ## Compare every placement policy over scenarios/*.json (10 seeds each); table, and a chart in docs/placement.svg
	swift build -c release --static-swift-stdlib --product scheduler
	.build/release/scheduler simulate scenarios/*.json --seeds 10 --plot docs/placement.svg

experiment: install ## Compare the placement policies on the real local system (bench services, 4 fog nodes); prints a table
	scripts/experiment.sh

bench-sim: install ## Time the simulator: 100,000 tasks on 50 nodes, each policy, release build
	swift build -c release --static-swift-stdlib --product scheduler
	.build/release/scheduler simulate scenarios/bench/large.json --timing

.PHONY: clean-build
clean-build: ## Remove build products
	swift package clean

# --- Docker Swarm: the production deployment (docs/DEPLOY.md) ---
# The stack is deployed on DOCKER_HOST, or on the private engine of scripts/swarm-engine.sh.
# FOG_TARGET=local points status, health, monitor, rabbitmq, redis, postgres, the -cli targets,
# purge, redis-flush, redis-clear-cluster and postgres-*-db at the local services (PROFILE=dev).
SWARM := scripts/swarm.sh
export FOG_TARGET PROFILE

.PHONY: engine-up engine-down images up down restart clean status health monitor debug logs logs-follow
engine-up: ## Start a private Docker engine and single-node Swarm here (when there is no engine)
	scripts/swarm-engine.sh up

engine-down: ## Remove the private engine and everything it made; the host is left as it was
	scripts/swarm-engine.sh down

images: engine-up ## Build the images (on the official bases, or offline on a debootstrap Debian base)
	$(SWARM) images

up: ## Deploy the stack from .env (refuses missing or example secrets) and wait until healthy
	$(SWARM) up

down: ## Remove the stack (volumes kept) and the generated secrets folder
	$(SWARM) down

restart: ## Remove and deploy the stack again (after changing .env, configs or secrets)
	$(SWARM) down
	$(SWARM) up

clean: ## Remove the stack, its volumes and the generated secrets (all data is lost)
	$(SWARM) clean

status: ## The services, their replicas and running tasks
	@$(SWARM) status

health: ## One ✓/✗ line per component (nodes, cluster, quorum members, leader, heartbeats); non-zero on any ✗
	@$(SWARM) health

monitor: ## Health every 5 s until interrupted (INTERVAL=s, ROUNDS=n)
	@$(SWARM) monitor

debug: ## Engine, nodes, failed tasks, container memory, disk, health and recent logs
	@$(SWARM) debug

logs: ## The last 100 lines of every service's log (TAIL=n)
	@$(SWARM) logs

logs-follow: ## Follow every service's log until interrupted
	@$(SWARM) logs-follow

.PHONY: rabbitmq redis postgres rabbitmq-cli redis-cli postgres-cli rabbitmq-ui
rabbitmq: ## RabbitMQ: the cluster, the queues of vhost fog (members, leaders), the users
	@$(SWARM) rabbitmq

redis: ## Redis: server, keys by kind, clusterctl's master and members, the scheduler leader
	@$(SWARM) redis

postgres: ## PostgreSQL: version, databases, tasks by status
	@$(SWARM) postgres

rabbitmq-cli: ## A shell on a RabbitMQ node (rabbitmqctl, rabbitmq-queues)
	@$(SWARM) rabbitmq-cli

redis-cli: ## redis-cli as the administrator
	@$(SWARM) redis-cli

postgres-cli: ## psql on the scheduler's database
	@$(SWARM) postgres-cli

rabbitmq-ui: ## Where the RabbitMQ management UI answers, and as whom to log in
	@$(SWARM) rabbitmq-ui

.PHONY: purge redis-flush redis-clear-cluster postgres-create-db postgres-drop-db
purge: ## Remove every message from every queue (asks; CONFIRM=yes)
	@$(SWARM) purge

redis-flush: ## Delete every Redis key; rebuilt within a heartbeat (asks; CONFIRM=yes)
	@$(SWARM) redis-flush

redis-clear-cluster: ## Delete clusterctl's state in Redis; a master is elected again (asks; CONFIRM=yes)
	@$(SWARM) redis-clear-cluster

postgres-create-db: ## Create the database if missing and migrate it
	@$(SWARM) postgres-create-db

postgres-drop-db: ## Drop the database: every task is lost (asks; CONFIRM=yes)
	@$(SWARM) postgres-drop-db

.PHONY: test-failover test-swarm
test-failover: ## Against the stack, while tasks flow: kill the RabbitMQ master, another node, Redis, the leader, a fog node; scale
	$(SWARM) test-failover

test-swarm: ## From nothing: private engine, images, up, health, 200 tasks, test-failover, then everything removed
	$(SWARM) test-swarm

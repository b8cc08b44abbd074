# Every target sets itself up: a project-local virtualenv for the Python tools,
# cargo for the rest. Targets that run anything locally pin the AWS SDK to
# loopback with dummy credentials, so nothing ever reaches a real account or
# the instance-metadata address.

SHELL := /bin/bash
PYTHON ?= python3
# One Python environment for every tool: moto, cfn-lint and the SAM CLI
# (requirements-dev.txt), and cargo-lambda for builds (added on first build).
VENV := .venv
LAMBDA_TARGET := aarch64-unknown-linux-gnu

LOCAL_AWS := AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1 \
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
	AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL=http://127.0.0.1:4566 \
	MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server

.PHONY: workspace local local-salesforce test fuzz lint validate build deploy bench soak soak-long dlq dlq-delete redrive reconcile clean

$(VENV)/.ready: requirements-dev.txt
	@echo "Setting up $(VENV) (moto, cfn-lint, the SAM CLI, pytest) from requirements-dev.txt..."
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

$(VENV)/.build-ready: $(VENV)/.ready
	@echo "Installing cargo-lambda into $(VENV) and the $(LAMBDA_TARGET) target..."
	$(VENV)/bin/pip install --quiet 'cargo-lambda>=1.8,<2'
	rustup target add $(LAMBDA_TARGET)
	touch $@

# Every binary and test of the workspace in one build: one feature set for
# every crate, so the soak, the tests and the conformance run share it and no
# crate is compiled twice.
WORKSPACE_BUILD := cargo build --workspace --all-targets

## workspace: that build alone (CI runs it once, before the soak and the tests share it).
workspace:
	$(WORKSPACE_BUILD)

## local: the whole pipeline on loopback (moto + local Salesforce), sample event posted, Case printed.
local: $(VENV)/.ready
	@echo "Building the workspace, tests included, so that make test reuses it (a few minutes the first time on two cores)..."
	$(WORKSPACE_BUILD)
	$(LOCAL_AWS) $${CARGO_TARGET_DIR:-target}/debug/local-stack $(ARGS)

## local-salesforce: only the local Salesforce, on 127.0.0.1:8900, to explore with curl.
local-salesforce:
	cargo run -p local-salesforce -- 8900

## test: unit, integration (moto + local Salesforce), operator-script, conformance, template and documentation tests.
test: $(VENV)/.ready
	@echo "Building every crate and test once, with one feature set (as the soak does)..."
	$(WORKSPACE_BUILD)
	@echo "Running the Rust tests (unit, integration against moto and the local Salesforce, properties)..."
	$(LOCAL_AWS) cargo test --workspace --no-fail-fast
	@echo "Running the conformance, template, operator-script and documentation tests..."
	$(VENV)/bin/pytest -q tests/conformance tests/template tests/ops_scripts tests/docs

## soak: the fault soak, 2,000 conversations as in CI (SOAK_EVENTS=N for another size).
SOAK_EVENTS ?= 2000
soak: $(VENV)/.ready
	@echo "Building the worker and the soak (the same build the tests use)..."
	$(WORKSPACE_BUILD)
	$(LOCAL_AWS) SOAK_EVENTS=$(SOAK_EVENTS) SOAK_RECORD=$(SOAK_RECORD) $${CARGO_TARGET_DIR:-target}/debug/soak

## soak-long: the same soak with 10,000 conversations (about a quarter of an hour), its figures
## written into docs/benchmarks.md ("Long soak"), passed or failed.
soak-long:
	$(MAKE) soak SOAK_EVENTS=10000 SOAK_RECORD=$(CURDIR)/docs/benchmarks.md

## bench: measure and write docs/benchmarks.md (builds release binaries, and arm64 with cargo lambda).
## It also builds and measures the opt-levels in BENCH_OPT_LEVELS (default "3 s z", empty for none),
## each in its own folder under the target folder: many minutes the first time, incremental afterwards.
## BENCH_ONLY=calls: only the Salesforce API-call sections (per conversation, per batch, a 10,000-
## conversation backlog), in a few minutes and without the arm64 build; the rest of the page is kept.
BENCH_ONLY ?=
bench: $(VENV)/.ready $(if $(BENCH_ONLY),,build)
	@echo "Building the bench (release)..."
	cargo build --quiet --release --bin bench -p proof
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(LOCAL_AWS) BENCH_ONLY=$(BENCH_ONLY) $${CARGO_TARGET_DIR:-target}/release/bench

## fuzz: the property tests with many more cases (CI runs the default 256 per property).
fuzz:
	PROPTEST_CASES=20000 cargo test --release --test integration properties::

## lint: formatting, clippy with warnings denied, template checks, and the check that every crate the
## Lambda functions link is compiled with the same features in tests as in Lambda's build.
lint: $(VENV)/.ready
	.ci/feature-parity
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml

## validate: the SAM CLI's own template check.
validate: $(VENV)/.ready
	$(VENV)/bin/sam validate --lint --region eu-west-1 --template template.yaml

## Operator commands: the AWS CLI, curl and python3 only (no Rust toolchain), against the stack STACK in
## AWS_REGION with your shell's AWS credentials (AWS_PROFILE, SSO...). Both default to samconfig.toml's.
## Any stack output can be given instead: QUEUE_URL, DLQ_URL, WEBHOOK_URL, WITIOP_SECRET_ID, SALESFORCE_SECRET_ID,
## WEBHOOK_FUNCTION_NAME.
STACK ?=
OPS := STACK="$(STACK)" AWS_REGION="$(AWS_REGION)" sh ops
.PHONY: outputs smoke status pause resume check-salesforce rollback

## outputs: the stack's outputs and WitiOp's complete webhook URL with ?token= (printed: it is a password).
outputs:
	@$(OPS)/outputs

## smoke: posts an ignored event type with the real token: proves URL and token, touches nothing else.
smoke:
	@$(OPS)/smoke

## status: alarm states, queue depths, oldest waiting message, whether the worker's SQS trigger is enabled.
status:
	@$(OPS)/status

## pause / resume: disable / enable the worker's SQS trigger (rotations, maintenance); events wait in the queue.
pause:
	@$(OPS)/trigger pause

resume:
	@$(OPS)/trigger resume

## rollback: every function's live alias back on the version before the last release (builds nothing);
## a release still going out (the webhook's canary) is stopped with rollback instead. Again: one more step.
rollback:
	@$(OPS)/rollback

## check-salesforce: a read-only checklist of the org's set-up against the Salesforce secret, one line a
## step (✓ / ✗ with what to fix / !), exit status 1 on any ✗; ARGS=--json for machines. Writes nothing.
check-salesforce:
	@$(OPS)/check-salesforce $(ARGS)

## dlq: list the dead-letter queue with reasons and message ids (long polls; says when it did not see
## everything); deletes nothing.
dlq:
	@$(OPS)/dlq

## dlq-delete: ID=<message id> (from make dlq): show that one parked conversation, then delete it for
## good; says so when it is not there, and never deletes anything else.
dlq-delete:
	@$(OPS)/dlq-delete "$(ID)"

## redrive: move the parked conversations back to the queue one by one, printing what it moved, skipped
## and left; REASON=<reason> (as make dlq shows it) moves only those parked for that reason.
redrive:
	@REASON="$(REASON)" $(OPS)/redrive

## reconcile: SINCE=24h (7d, 2026-11-26T03:00:00Z; UNTIL= too): the conversations the webhook accepted
## that have no Case in Salesforce, from the webhook's log; exit status 1 when any.
reconcile:
	@SINCE="$(SINCE)" UNTIL="$(UNTIL)" $(OPS)/reconcile

## build: release arm64 Lambda binaries (target/lambda/{webhook,worker,links}/bootstrap).
build: $(VENV)/.build-ready
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH cargo lambda build --release --arm64 --bin webhook --bin worker --bin links

## deploy: sam build + sam deploy (guided the first time, samconfig.toml afterwards).
deploy: $(VENV)/.build-ready
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH sam build --beta-features
	if [ -f samconfig.toml ]; then \
		$(VENV)/bin/sam deploy; \
	else \
		$(VENV)/bin/sam deploy --guided --capabilities CAPABILITY_IAM; \
	fi

clean:
	cargo clean
	rm -rf $(VENV) .aws-sam

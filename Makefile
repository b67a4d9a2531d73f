# gridmap: `make run` sets everything up and serves on :8080; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := run

GO      ?= go
ADDR    ?= :8080
BIN     := bin/gridmap
# DATABASE_URL from the environment wins (and then nothing is installed or
# started); otherwise the project-local cluster that scripts/db.sh runs.
ifeq ($(strip $(DATABASE_URL)),)
EXTERNAL_DB :=
export DATABASE_URL := postgres://postgres@127.0.0.1:55432/gridmap?sslmode=disable
else
EXTERNAL_DB := 1
endif

GO_SOURCES := $(shell find . -name '*.go' -not -path './.data/*' -not -path './web/node_modules/*') go.mod go.sum $(wildcard data/migrations/*.sql data/demo/*)

.PHONY: run db db-stop build migrate demo test lint vet bench clean

$(BIN): $(GO_SOURCES)
	$(GO) build -o $(BIN) ./cmd/gridmap

build: $(BIN)

## db: install (when missing) and start the project-local PostgreSQL + PostGIS; prints DATABASE_URL
db:
	@$(if $(EXTERNAL_DB),scripts/db.sh start,env -u DATABASE_URL scripts/db.sh start)

db-stop:
	@scripts/db.sh stop

migrate: db $(BIN)
	@$(BIN) migrate

## demo: build the demo city when the database holds no units, and 200,000 objects when it holds none
DEMO_OBJECTS ?= 200000
demo: migrate
	@$(BIN) demo --if-empty --objects $(DEMO_OBJECTS)

run: demo
	@echo "gridmap: serving on http://localhost$(ADDR)  (DATABASE_URL=$(DATABASE_URL))"
	@ADDR=$(ADDR) $(BIN) serve

vet:
	$(GO) vet ./...

## lint: gofmt, go vet and staticcheck (pinned as a go tool in go.mod)
lint: vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) tool staticcheck ./...

## test: lint, then every test against the real PostGIS (started here)
test: db lint
	$(GO) test -count=1 -timeout 30m ./...

## bench: the Go benchmarks (figures go to docs/benchmarks.md)
bench: db
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...

clean:
	rm -rf bin out

# gridmap: `make run` sets everything up and serves on :8080; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := run

GO      ?= go
ADDR    ?= :8080
BIN     := bin/gridmap
# DATABASE_URL from the environment wins; otherwise the project-local cluster.
DB_URL  := $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:55432/gridmap?sslmode=disable)
export DATABASE_URL := $(DB_URL)

GO_SOURCES := $(shell find . -name '*.go' -not -path './.data/*' -not -path './web/node_modules/*') go.mod go.sum $(wildcard data/migrations/*.sql data/demo/*)

.PHONY: run db db-stop build migrate demo test vet bench clean

$(BIN): $(GO_SOURCES)
	$(GO) build -o $(BIN) ./cmd/gridmap

build: $(BIN)

## db: install (when missing) and start the project-local PostgreSQL + PostGIS; prints DATABASE_URL
db:
	@scripts/db.sh start

db-stop:
	@scripts/db.sh stop

migrate: db $(BIN)
	@$(BIN) migrate

## demo: build the demo city when the database holds no units
demo: migrate
	@$(BIN) demo --if-empty

run: demo
	@echo "gridmap: serving on http://localhost$(ADDR)  (DATABASE_URL=$(DATABASE_URL))"
	@ADDR=$(ADDR) $(BIN) serve

vet:
	$(GO) vet ./...

## test: go vet and every test against the real PostGIS (started here)
test: db vet
	CI=$(CI) $(GO) test -count=1 -timeout 20m ./...

bench: db
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

clean:
	rm -rf bin out

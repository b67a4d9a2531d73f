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

# The wall map (web/): npm installs MapLibre GL JS and playwright-core; the
# MapLibre files are copied into web/dist/ and embedded in the binary.
WEB_STAMP := web/node_modules/.package-lock.json
WEB_DIST  := $(addprefix web/dist/,maplibre-gl.mjs maplibre-gl-worker.mjs maplibre-gl.css terra-draw.js terra-draw-maplibre-gl-adapter.js)
WEB_FILES := web/index.html web/editor.html web/app.css web/editor.css $(wildcard web/*.js)
# The page's pure modules, tested under Node without a browser.
WEB_UNIT_TESTS := test/geometry.test.mjs test/style.test.mjs test/sse.test.mjs test/snap.test.mjs test/preview.test.mjs
CJK_FONT  := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc

.PHONY: run db db-stop build web web-test browser-deps gdal migrate demo test test-ha lint vet bench fuzz clean

$(BIN): $(GO_SOURCES) $(WEB_DIST) $(WEB_FILES)
	$(GO) build -o $(BIN) ./cmd/gridmap

build: $(BIN)

## web: npm ci in web/ (only when web/node_modules is missing or web/package-lock.json changed), then MapLibre's and terra-draw's files into web/dist
web: $(WEB_DIST)

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# terra-draw (the boundary editor's drawing) and its MapLibre adapter: their
# ESM builds, browser modules as they are (the adapter's one bare import,
# "terra-draw", is resolved by the import map in editor.html).
web/dist/terra-draw.js: $(WEB_STAMP)
	cp web/node_modules/terra-draw/dist/terra-draw.modern.js $@

web/dist/terra-draw-maplibre-gl-adapter.js: $(WEB_STAMP)
	cp web/node_modules/terra-draw-maplibre-gl-adapter/dist/terra-draw-maplibre-gl-adapter.modern.js $@

web/dist/%: $(WEB_STAMP)
	cp web/node_modules/maplibre-gl/dist/$* $@

## web-test: the wall map's pure modules (geometry, units, style, the fetch event stream) under Node, no browser
web-test:
	cd web && node --test $(WEB_UNIT_TESTS)

## browser-deps: Debian's chromium and a CJK font for the browser test, when missing (apt-get, as root)
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -f $(CJK_FONT) ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "browser-deps: install Debian's chromium and fonts-wqy-microhei (needs root)"; exit 1; fi; \
	  echo "browser-deps: installing chromium and fonts-wqy-microhei from Debian"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei >/dev/null; \
	fi

## gdal: GDAL's ogrinfo (Debian's gdal-bin), the real MVT client of the tile tests, when missing (apt-get, as root)
gdal:
	@if ! command -v ogrinfo >/dev/null 2>&1; then \
	  if [ "$$(id -u)" != 0 ]; then echo "gdal: install Debian's gdal-bin (needs root)"; exit 1; fi; \
	  echo "gdal: installing gdal-bin from Debian"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq --no-install-recommends gdal-bin >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends gdal-bin >/dev/null; }; \
	fi

## db: install (when missing) and start the project-local PostgreSQL + PostGIS; prints DATABASE_URL
db:
	@$(if $(EXTERNAL_DB),scripts/db.sh start,env -u DATABASE_URL scripts/db.sh start)

db-stop:
	@scripts/db.sh stop

migrate: db $(BIN)
	@$(BIN) migrate

## demo: build the demo city when the database holds no units, 200,000 objects when it holds none, and 20,000 events of the last 30 days when it holds none
DEMO_OBJECTS ?= 200000
DEMO_EVENTS  ?= 20000
demo: migrate
	@$(BIN) demo --if-empty --objects $(DEMO_OBJECTS) --events $(DEMO_EVENTS)

## run: serve the demo with public reads; writes need the admin token kept in $(DEMO_TOKEN) (reused while valid, printed at start)
DEMO_TOKEN ?= out/demo-admin.token
run: demo
	@$(BIN) token ensure --name demo-admin --role admin --file $(DEMO_TOKEN) --url http://localhost$(ADDR)
	@echo "gridmap: serving on http://localhost$(ADDR) with public reads  (DATABASE_URL=$(DATABASE_URL))"
	@ADDR=$(ADDR) $(BIN) serve --public-read

vet:
	$(GO) vet ./...

## lint: gofmt, go vet and staticcheck (pinned as a go tool in go.mod)
lint: vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) tool staticcheck ./...

## test: lint, then every test against the real PostGIS (started here), the wall map's in headless Chromium, the tiles' through GDAL; then the failover test (test-ha)
test: db lint web web-test browser-deps gdal
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) test-ha

## test-ha: failover on a loopback primary + synchronous standby (scripts/ha.sh, two free ports from 25441): two servers, writes across a killed primary (35-110 s; part of make test)
test-ha:
	$(GO) test -tags ha -run TestFailover -count=1 -v -timeout 10m ./cmd/gridmap/

## fuzz: every Go fuzz target for FUZZTIME each (make test runs them on their seed corpora only)
FUZZTIME ?= 60s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz: $$pkg $$f for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## bench: the Go benchmarks (figures go to docs/benchmarks.md)
bench: db
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...

clean:
	rm -rf bin out $(WEB_DIST)

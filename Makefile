# pachca-export: build, test, demo, bench, lint.
# Tools the tests need are installed into ./bin, pinned: MinIO and promtool
# with `go install`, DuckDB's Node.js binding with npm.

GO        ?= go
BIN       := $(CURDIR)/bin
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
MINIO     := $(BIN)/minio
STATICCHECK_VERSION := v0.8.2
GOVULNCHECK_VERSION := v1.8.0
# promtool of Prometheus 3 (the Go module of Prometheus v3.x is numbered v0.3xx).
PROMETHEUS_VERSION := v0.316.0
PROMTOOL  := $(BIN)/promtool
DUCKDB_NODE_VERSION := 1.5.6-r.1
DUCKDB_NODE := $(BIN)/duckdb-node
export PACHCA_MINIO := $(MINIO)
export PACHCA_PROMTOOL := $(PROMTOOL)
export PACHCA_DUCKDB_NODE := $(DUCKDB_NODE)
# Parquet readers independent of Arrow Go and DuckDB (testkit/parquetjs):
# hyparquet (pure JavaScript) and parquet-wasm (arrow-rs's parquet crate).
HYPARQUET_VERSION := 1.33.0
HYPARQUET_COMPRESSORS_VERSION := 1.1.2
PARQUET_WASM_VERSION := 0.8.0
APACHE_ARROW_JS_VERSION := 21.2.0
PARQUET_JS := $(BIN)/parquet-js
export PACHCA_PARQUET_JS := $(PARQUET_JS)

.PHONY: all build test test-short demo bench bench-cgroup killsoak followsoak followlong lint fuzz tools minio promtool duckdb parquetjs clean browser echarts bench-report release image systemd-analyze dashboard packages package-tools config-schema

# Release builds: static, paths trimmed, stamped with the version, the commit
# and its time (a fixed date keeps builds reproducible: the same commit gives
# the same SHA256SUMS). Override any of them: make release VERSION=v1.2.0
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# A tree with uncommitted changes is not the commit: COMMIT says so with
# -dirty, as VERSION's git describe does (and as an unstamped build does).
COMMIT     ?= $(shell c=$$(git rev-parse HEAD 2>/dev/null) || { echo unknown; exit; }; \
	git diff --quiet HEAD -- 2>/dev/null || c=$$c-dirty; echo $$c)
BUILD_DATE ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo unknown)
LDFLAGS    := -s -w -X main.buildVersion=$(VERSION) -X main.buildCommit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)
STATIC_BUILD := CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)'
RELEASE_PLATFORMS := linux-amd64 linux-arm64 darwin-amd64 darwin-arm64
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The whole suite, with real MinIO, an in-process Kafka broker, promtool,
# DuckDB, hyparquet, parquet-wasm, Chromium and systemd-analyze (go vet runs
# in lint, which CI runs too). -parallel 8: the tests that call t.Parallel
# wait (a midnight a few seconds ahead, rate limits, intervals) far more than
# they compute; the default, GOMAXPROCS, ran two at a time on 2 cores.
test: minio promtool duckdb parquetjs browser systemd-analyze package-tools
	$(GO) test -race -count=1 -parallel 8 -timeout 12m ./...

# Without the race detector and without MinIO (tests that need it skip unless CI=true).
test-short:
	$(GO) test -count=1 -short ./...

demo: build
	$(BIN)/pachca-export demo --out out/demo

# Micro-benchmarks (benchstat-friendly), then whole pachca-export runs
# against pachca-sim (every rate-limit model, a tight limit, a slower server,
# SIGKILL and rerun) and the peak RSS of a 1,000,000-event export: about 20
# minutes. Figures and machine: BENCHMARKS.md.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./transform/... ./sinks/... ./extract/
	$(BIN)/pachca-bench -export-bin $(BIN)/pachca-export -sim-bin $(BIN)/pachca-sim

# Whole runs under cgroup v1 CPU quotas (none, 500m, 250m, 100m) and a
# 128 MiB memory limit, the simulator outside the group (bench/cgroup.sh;
# bench/cgroup-follow.sh for follow): root only, not part of `make test`.
# Figures: README, CPU and memory limits.
CGROUP_EVENTS ?= 200000
bench-cgroup: build
	for q in 0 500 250 100; do bench/cgroup.sh $$q 0 $(CGROUP_EVENTS); done
	bench/cgroup.sh 250 128 1000000

# SIGKILL at random moments, then the same command again, checking the
# output exactly (cmd/pachca-export/killsoak_test.go): not part of `make test`.
# KILLSOAK_STRACE=1 kills at a syscall (strace's fault injection) instead of
# after a delay; KILLSOAK_SCENARIOS=kill,replace,... picks scenarios.
KILLSOAK_ITERATIONS ?= 200
KILLSOAK_SEED ?= 1
killsoak: minio duckdb
	PACHCA_KILL_SOAK=$(KILLSOAK_ITERATIONS) PACHCA_KILL_SOAK_SEED=$(KILLSOAK_SEED) \
	PACHCA_KILL_SOAK_STRACE=$(KILLSOAK_STRACE) PACHCA_KILL_SOAK_SCENARIOS=$(KILLSOAK_SCENARIOS) \
		$(GO) test -count=1 -timeout 60m -run '^TestKillSoak$$' -v ./cmd/pachca-export/

# The same for the follow mode (cmd/pachca-export/followsoak_test.go): a
# follow process SIGKILLed at random moments and started again, its clock
# jumping a day or two while it is down, until several days are sealed,
# in about half the iterations with a Kafka sink on an in-process kfake
# broker (every event of the sealed days from --from on at least once in
# the topic, no other message), and in about half with an S3 sink on MinIO
# (checked as the file sinks); about 40 s an iteration. Not part of
# `make test`. FOLLOWSOAK_STRACE=1 kills at a syscall (strace's fault
# injection) instead.
FOLLOWSOAK_ITERATIONS ?= 20
FOLLOWSOAK_SEED ?= 1
followsoak: minio duckdb
	PACHCA_FOLLOW_SOAK=$(FOLLOWSOAK_ITERATIONS) PACHCA_FOLLOW_SOAK_SEED=$(FOLLOWSOAK_SEED) \
	PACHCA_FOLLOW_SOAK_STRACE=$(FOLLOWSOAK_STRACE) \
		$(GO) test -count=1 -timeout 60m -run '^TestFollowKillSoak$$' -v ./cmd/pachca-export/

# One follow process over FOLLOWLONG_DAYS simulated days, its clock moved a
# day ahead at each (cmd/pachca-export/followlong_test.go): descriptors,
# goroutines, /metrics series, the state's files and bytes, the files of a
# sealed day, temporary files, the log and the requests of an idle cycle
# must not grow from day 5 on; every event of the sealed days once, verify
# passes. About 5 s a day; `make test` runs 4 days.
FOLLOWLONG_DAYS ?= 30
followlong:
	PACHCA_FOLLOW_LONG=$(FOLLOWLONG_DAYS) $(GO) test -count=1 -timeout 60m -run '^TestFollowLong$$' -v ./cmd/pachca-export/

# Each fuzz target in turn; new crashers land in the package's testdata/fuzz.
# The second line: the readers of what comes back from disk (state files,
# manifests, data files as report and verify read them).
FUZZ_TARGETS := FuzzDecodePage:./extract/ FuzzParse:./config/ FuzzSchemaTakesWhatConfigTakes:./config/configschema/ FuzzNormalize:./transform/ FuzzMap:./transform/ocsf/ \
	FuzzRead:./internal/sumfile/ FuzzExported:./state/ FuzzFollow:./state/ FuzzDelivered:./state/ FuzzSpool:./state/ FuzzDecodeManifest:./sinks/ \
	FuzzReadParquet:./report/reader/ FuzzReadNDJSON:./report/reader/ FuzzReadRecords:./verify/

# A count of inputs, not a duration (about 10 s each here): Go 1.26's fuzz
# coordinator can fail a target with "context deadline exceeded" when a
# -fuzztime duration ends on a loaded machine (go.dev/issue/75804, fixed in
# Go 1.27); a count has no deadline to race.
FUZZ_SHORT_INPUTS := FuzzDecodePage=100000 FuzzParse=60000 FuzzSchemaTakesWhatConfigTakes=30000 FuzzNormalize=200000 FuzzMap=200000 \
	FuzzRead=60000 FuzzExported=15000 FuzzFollow=15000 FuzzDelivered=20000 FuzzSpool=20000 FuzzDecodeManifest=100000 \
	FuzzReadParquet=6000 FuzzReadNDJSON=15000 FuzzReadRecords=3000

# Each new interesting input is minimized in at most this many runs (the
# default, a minute each, held the Parquet targets on their first inputs
# for minutes); a crasher is kept all the same.
FUZZ_MINIMIZE := 100x

# make fuzz: six times as many (about a minute each).
.PHONY: fuzz-short
fuzz fuzz-short:
	@times=$(if $(filter fuzz,$@),6,1); for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; n=$$(for c in $(FUZZ_SHORT_INPUTS); do [ "$${c%%=*}" = "$$name" ] && echo $${c#*=}; done); \
		n=$$(( $${n:-100000} * times )); \
		echo "fuzz $$name for $$n inputs"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime "$${n}x" -fuzzminimizetime $(FUZZ_MINIMIZE) "$${t#*:}" || exit 1; \
	done

# go vet, staticcheck and govulncheck, installed pinned into ./bin. Without
# access to vuln.go.dev govulncheck is skipped with a notice; findings fail.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt: not formatted (run gofmt -w):"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	# the release's other systems: code only Linux has must stay behind a build tag
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(BIN)/staticcheck ./...
	GOBIN=$(BIN) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	@out=$$($(BIN)/govulncheck ./... 2>&1); rc=$$?; \
	if [ $$rc -eq 0 ]; then echo "govulncheck: no known vulnerabilities"; \
	elif [ $$rc -ne 3 ] && printf '%s' "$$out" | grep -q 'fetching vulnerabilities'; then \
		echo "govulncheck: skipped, the vulnerability database (vuln.go.dev) cannot be fetched from here"; \
	else printf '%s\n' "$$out"; exit 1; fi

minio: $(MINIO)

# systemd-analyze checks the units in deploy/systemd (verify, security):
# Debian's systemd package, installed when missing and apt-get can; else the
# test skips (and fails with CI=true).
systemd-analyze:
	@command -v systemd-analyze >/dev/null 2>&1 || { \
		echo "installing Debian's systemd package for systemd-analyze"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get install -y --no-install-recommends systemd >/dev/null 2>&1 || \
		  { apt-get update >/dev/null && apt-get install -y --no-install-recommends systemd >/dev/null; }; } || \
		echo "could not install systemd: the systemd-analyze test skips (fails with CI=true)"; }

# lintian and rpm read the packages back (cmd/pachca-pkg's test): Debian's
# lintian and rpm packages, installed when missing and apt-get can; else
# the test skips them (and fails with CI=true). About 15 s, once.
package-tools:
	@command -v lintian >/dev/null 2>&1 && command -v rpm >/dev/null 2>&1 || { \
		echo "installing Debian's lintian and rpm packages for the packages' test"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get install -y --no-install-recommends lintian rpm >/dev/null 2>&1 || \
		  { apt-get update >/dev/null && apt-get install -y --no-install-recommends lintian rpm >/dev/null; }; } || \
		echo "could not install lintian and rpm: the packages' test skips them (fails with CI=true)"; }

$(MINIO):
	@mkdir -p $(BIN)
	@echo "building MinIO $(MINIO_VERSION) into $(BIN) (a few minutes, once)"
	GOBIN=$(BIN) $(GO) install github.com/minio/minio@$(MINIO_VERSION)

# Debian's chromium for the report's browser tests (installed once, as root
# like CI; the tests skip without it unless CI=true).
CHROMIUM := /usr/bin/chromium

browser: $(CHROMIUM)

$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests (a few minutes, once)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The charting library embedded in every report, pinned; this target fetches
# it again from npm (the files are committed under report/page/assets).
ECHARTS_VERSION := 6.1.0

echarts:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent echarts@$(ECHARTS_VERSION) >/dev/null && tar xzf echarts-$(ECHARTS_VERSION).tgz && \
	cp package/dist/echarts.common.min.js $(CURDIR)/report/page/assets/echarts.common.min.js && \
	cp package/LICENSE $(CURDIR)/report/page/assets/echarts.LICENSE && \
	cp package/NOTICE $(CURDIR)/report/page/assets/echarts.NOTICE && rm -rf $$tmp
	@echo "ECharts $(ECHARTS_VERSION) in report/page/assets (set page.EChartsVersion and notices.Embedded to match)"

# config/pipeline.schema.json, the JSON Schema of pipeline.yaml for editors,
# from the config structs and config/configschema/keys.go; the binary embeds
# it (schema --config).
config-schema:
	$(GO) test ./config/configschema -run TestSchemaFile -count=1 -update

# deploy/grafana/pachca-export.json from deploy/grafana/dashboard.go.
dashboard:
	go test ./deploy/grafana -run TestDashboardFile -count=1 -update

# The report over 90 days of 100,000 events (9,000,000), Parquet and gzip
# NDJSON, with time and peak RSS (BENCHMARKS.md, "Report"). Writes ~1 GB under out/.
bench-report: build
	$(GO) run ./cmd/pachca-reportgen -out out/bench-report -days 90 -events 100000 -from 2026-08-01 -ndjson
	/usr/bin/time -v $(BIN)/pachca-export report out/bench-report/parquet --from 2026-08-01 --to 2026-10-30 -o out/bench-report/parquet.html 2>&1 | grep -E 'report:|Elapsed|Maximum resident'
	/usr/bin/time -v $(BIN)/pachca-export report out/bench-report/ndjson --from 2026-08-01 --to 2026-10-30 -o out/bench-report/ndjson.html 2>&1 | grep -E 'report:|Elapsed|Maximum resident'

# dist/pachca-export-OS-ARCH for every release platform, its SBOM
# dist/pachca-export-OS-ARCH.cdx.json (CycloneDX 1.6 JSON: the modules it
# links with their hashes, the Go standard library, the licences:
# cmd/pachca-sbom), dist/THIRD_PARTY_NOTICES (the licence and notice files
# of everything the binaries link and embed, from the Go module cache:
# cmd/pachca-notices), the .deb and .rpm of each linux binary (see
# packages), and dist/SHA256SUMS (check with: cd dist && sha256sum -c
# SHA256SUMS).
RELEASE_BINARIES := $(addprefix pachca-export-,$(RELEASE_PLATFORMS))
RELEASE_FILES := $(RELEASE_BINARIES) $(addsuffix .cdx.json,$(RELEASE_BINARIES)) THIRD_PARTY_NOTICES
release:
	@mkdir -p dist
	@for p in $(RELEASE_PLATFORMS); do \
		echo "build dist/pachca-export-$$p ($(VERSION))"; \
		GOOS=$${p%-*} GOARCH=$${p#*-} $(STATIC_BUILD) -o dist/pachca-export-$$p ./cmd/pachca-export || exit 1; \
	done
	$(GO) run ./cmd/pachca-sbom -version '$(VERSION)' $(addprefix dist/,$(RELEASE_BINARIES))
	$(GO) run ./cmd/pachca-notices -o dist/THIRD_PARTY_NOTICES $(addprefix dist/,$(RELEASE_BINARIES))
	$(BUILD_PACKAGES)
	cd dist && if command -v sha256sum >/dev/null; then sha256sum $(RELEASE_FILES) $(PACKAGE_FILES); \
		else shasum -a 256 $(RELEASE_FILES) $(PACKAGE_FILES); fi > SHA256SUMS
	@cat dist/SHA256SUMS

# The .deb and .rpm of each linux release binary (cmd/pachca-pkg, over
# nfpm): dist/pachca-export_VERSION-1_ARCH.deb and
# dist/pachca-export-VERSION-1.ARCH.rpm, VERSION mapped from git describe
# (v1.2.0-3-gabcdef1 -> 1.2.0+3.gabcdef1). The binary in /usr/bin, the
# units of deploy/systemd, the sysusers.d file, an example
# /etc/pachca-export/pipeline.yaml (a conffile), the README, the SBOM and
# THIRD_PARTY_NOTICES-linux (the notices of the linux binaries) in
# /usr/share/doc/pachca-export. Every file dated BUILD_DATE: one commit,
# the same bytes. `make release` builds them too, into SHA256SUMS.
PACKAGE_PLATFORMS := $(filter linux-%,$(RELEASE_PLATFORMS))
PACKAGE_BINARIES := $(addprefix dist/pachca-export-,$(PACKAGE_PLATFORMS))
PACKAGE_MAINTAINER ?= $(shell git log -1 --format='%an <%ae>' 2>/dev/null)
PACKAGE_FILES := pachca-export_*.deb pachca-export-*.rpm
BUILD_PACKAGES = $(GO) run ./cmd/pachca-notices -o dist/THIRD_PARTY_NOTICES-linux $(PACKAGE_BINARIES) && \
	rm -f dist/pachca-export_*.deb dist/pachca-export-*.rpm && \
	$(GO) run ./cmd/pachca-pkg -version '$(VERSION)' -date '$(BUILD_DATE)' -maintainer '$(PACKAGE_MAINTAINER)' \
		-notices dist/THIRD_PARTY_NOTICES-linux -o dist $(PACKAGE_BINARIES)
packages:
	@mkdir -p dist
	@for p in $(PACKAGE_PLATFORMS); do \
		echo "build dist/pachca-export-$$p ($(VERSION))"; \
		GOOS=$${p%-*} GOARCH=$${p#*-} $(STATIC_BUILD) -o dist/pachca-export-$$p ./cmd/pachca-export || exit 1; \
	done
	$(GO) run ./cmd/pachca-sbom -version '$(VERSION)' $(PACKAGE_BINARIES)
	$(BUILD_PACKAGES)

# The container image without a container engine: the release binary for
# linux/IMAGE_ARCH, this machine's CA bundle (Debian's ca-certificates), the
# binary's THIRD_PARTY_NOTICES and SBOM (in /usr/share/doc/pachca-export), as
# dist/pachca-export-image-linux-ARCH.tar (docker load, podman load,
# skopeo copy oci-archive:..., crane push). The Dockerfile builds the same.
image:
	@mkdir -p dist
	GOOS=linux GOARCH=$(IMAGE_ARCH) $(STATIC_BUILD) -o dist/pachca-export-linux-$(IMAGE_ARCH) ./cmd/pachca-export
	$(GO) run ./cmd/pachca-notices -o dist/THIRD_PARTY_NOTICES-linux-$(IMAGE_ARCH) dist/pachca-export-linux-$(IMAGE_ARCH)
	$(GO) run ./cmd/pachca-sbom -version '$(VERSION)' dist/pachca-export-linux-$(IMAGE_ARCH)
	$(GO) run ./cmd/pachca-image -binary dist/pachca-export-linux-$(IMAGE_ARCH) -arch $(IMAGE_ARCH) \
		-notices dist/THIRD_PARTY_NOTICES-linux-$(IMAGE_ARCH) -sbom dist/pachca-export-linux-$(IMAGE_ARCH).cdx.json \
		-version '$(VERSION)' -revision '$(COMMIT)' -created '$(BUILD_DATE)' \
		-o dist/pachca-export-image-linux-$(IMAGE_ARCH).tar

# promtool, to check the metrics the exporter writes (built once, pinned).
promtool: $(PROMTOOL)

$(PROMTOOL):
	@mkdir -p $(BIN)
	@echo "building promtool $(PROMETHEUS_VERSION) into $(BIN) (a few minutes, once)"
	GOBIN=$(BIN) $(GO) install github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)

# DuckDB through its Node.js package, to check what readers see (installed once, pinned).
duckdb: $(DUCKDB_NODE)/node_modules/@duckdb/node-api/package.json

$(DUCKDB_NODE)/node_modules/@duckdb/node-api/package.json:
	@mkdir -p $(DUCKDB_NODE)
	npm install --prefix $(DUCKDB_NODE) --no-save --no-audit --no-fund --loglevel=error @duckdb/node-api@$(DUCKDB_NODE_VERSION)

# hyparquet and parquet-wasm through Node.js, to check what readers other
# than Arrow Go and DuckDB see (installed once, pinned). The marker file
# names every version, so a new pin installs again.
PARQUET_JS_STAMP := $(PARQUET_JS)/.installed-$(HYPARQUET_VERSION)-$(HYPARQUET_COMPRESSORS_VERSION)-$(PARQUET_WASM_VERSION)-$(APACHE_ARROW_JS_VERSION)

parquetjs: $(PARQUET_JS_STAMP)

$(PARQUET_JS_STAMP):
	@mkdir -p $(PARQUET_JS)
	rm -f $(PARQUET_JS)/.installed-*
	npm install --prefix $(PARQUET_JS) --no-save --no-audit --no-fund --loglevel=error \
		hyparquet@$(HYPARQUET_VERSION) hyparquet-compressors@$(HYPARQUET_COMPRESSORS_VERSION) \
		parquet-wasm@$(PARQUET_WASM_VERSION) apache-arrow@$(APACHE_ARROW_JS_VERSION)
	touch $@

clean:
	rm -rf $(BIN) out dist

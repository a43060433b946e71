# pachca-export: build, test, demo, bench, lint.
# Tools the tests need (MinIO) are built with `go install` into ./bin, pinned.

GO        ?= go
BIN       := $(CURDIR)/bin
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
MINIO     := $(BIN)/minio
STATICCHECK_VERSION := v0.8.2
GOVULNCHECK_VERSION := v1.8.0
export PACHCA_MINIO := $(MINIO)

.PHONY: all build test test-short demo bench lint fuzz tools minio clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The whole suite, with real MinIO and an in-process Kafka broker (go vet
# runs in lint, which CI runs too).
test: minio
	$(GO) test -race -count=1 -timeout 12m ./...

# Without the race detector and without MinIO (tests that need it skip unless CI=true).
test-short:
	$(GO) test -count=1 -short ./...

demo: build
	$(BIN)/pachca-export demo --out out/demo

# Micro-benchmarks (benchstat-friendly), then whole pachca-export runs
# against pachca-sim (every rate-limit model, a tight limit, a slower server,
# SIGKILL and rerun) and the peak RSS of a 1,000,000-event export: about 16
# minutes. Figures and machine: BENCHMARKS.md.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./transform/ ./sinks/...
	$(BIN)/pachca-bench -export-bin $(BIN)/pachca-export -sim-bin $(BIN)/pachca-sim

# Each fuzz target in turn; new crashers land in the package's testdata/fuzz.
FUZZ_TARGETS := FuzzDecodePage:./extract/ FuzzParse:./config/ FuzzNormalize:./transform/

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t%%:*} for 60s"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime 60s "$${t#*:}" || exit 1; \
	done

.PHONY: fuzz-short
fuzz-short:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t%%:*} for 10s"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime 10s "$${t#*:}" || exit 1; \
	done

# go vet, staticcheck and govulncheck, installed pinned into ./bin. Without
# access to vuln.go.dev govulncheck is skipped with a notice; findings fail.
lint:
	$(GO) vet ./...
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(BIN)/staticcheck ./...
	GOBIN=$(BIN) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	@out=$$($(BIN)/govulncheck ./... 2>&1); rc=$$?; \
	if [ $$rc -eq 0 ]; then echo "govulncheck: no known vulnerabilities"; \
	elif [ $$rc -ne 3 ] && printf '%s' "$$out" | grep -q 'fetching vulnerabilities'; then \
		echo "govulncheck: skipped, the vulnerability database (vuln.go.dev) cannot be fetched from here"; \
	else printf '%s\n' "$$out"; exit 1; fi

minio: $(MINIO)

$(MINIO):
	@mkdir -p $(BIN)
	@echo "building MinIO $(MINIO_VERSION) into $(BIN) (a few minutes, once)"
	GOBIN=$(BIN) $(GO) install github.com/minio/minio@$(MINIO_VERSION)

clean:
	rm -rf $(BIN) out

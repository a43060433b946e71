# pachca-export: build, test, demo, bench, lint.
# Tools the tests need (MinIO) are built with `go install` into ./bin, pinned.

GO        ?= go
BIN       := $(CURDIR)/bin
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
MINIO     := $(BIN)/minio
STATICCHECK_VERSION := 2025.1.1
GOVULNCHECK_VERSION := v1.1.4
export PACHCA_MINIO := $(MINIO)

.PHONY: all build test test-short demo bench lint fuzz tools minio clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The whole suite, with real MinIO and an in-process Kafka broker.
test: minio
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m ./...

# Without the race detector and without MinIO (tests that need it skip unless CI=true).
test-short:
	$(GO) test -count=1 -short ./...

demo: build
	$(BIN)/pachca-export demo --out out/demo

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./transform/ ./sinks/...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzNormalize -fuzztime 30s ./transform/

lint:
	$(GO) vet ./...

minio: $(MINIO)

$(MINIO):
	@mkdir -p $(BIN)
	@echo "building MinIO $(MINIO_VERSION) into $(BIN) (a few minutes, once)"
	GOBIN=$(BIN) $(GO) install github.com/minio/minio@$(MINIO_VERSION)

clean:
	rm -rf $(BIN) out

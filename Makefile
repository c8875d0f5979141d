# edged — build and test. Go comes from PATH, or /usr/local/go/bin.
export PATH := $(PATH):/usr/local/go/bin
export CGO_ENABLED := 0

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test bench demo clean

build:
	go build -trimpath -ldflags "$(LDFLAGS)" -o edged ./cmd/edged

test:
	go vet ./...
	go test -count=1 -timeout 15m ./...

bench:
	go test -run '^$$' -bench . -benchtime 1x ./...

demo: build
	./edged demo

clean:
	rm -rf edged dist

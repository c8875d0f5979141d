# edged — build and test. Go comes from PATH, or /usr/local/go/bin.
export PATH := $(PATH):/usr/local/go/bin
export CGO_ENABLED := 0

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test lint race bench bench-broker bench-broker-one-core demo deb deb-test powercut chaos clean

build:
	go build -trimpath -ldflags "$(LDFLAGS)" -o edged ./cmd/edged

test:
	go vet ./...
	go test -count=1 -timeout 15m ./...

# go vet and staticcheck over every file, the fault suites' included (staticcheck is fetched by the go
# command at a fixed version; nothing to install).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	go vet -tags faults ./...
	go run $(STATICCHECK) -tags faults ./...

# The whole suite under the race detector (needs cgo and a C compiler).
race:
	CGO_ENABLED=1 go test -race -count=1 -timeout 20m ./...

bench:
	go test -run '^$$' -bench . -benchtime 1x ./...

# edged's broker next to Mosquitto 2.0.11, each a process of its own on its defaults, the same clients
# (mosquitto_sub, paho) loading both in alternating rounds: ratios of CPU per message, peak RSS,
# delivered fraction and throughput. A few minutes; not part of make test.
BENCH_BROKER_FLAGS ?= -rounds 5
bench-broker: build
	go run ./bench/brokercost -edged ./edged $(BENCH_BROKER_FLAGS)

# The same with both brokers pinned to one CPU (taskset -c 0, GOMAXPROCS=1), as on a Pi Zero.
bench-broker-one-core: build
	go run ./bench/brokercost -edged ./edged -one-core $(BENCH_BROKER_FLAGS)

demo: build
	./edged demo

# dist/edged_<version>_{arm64,armhf,amd64}.deb, with dpkg-deb: no root, no cross toolchain.
deb:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' packaging/build-deb.sh

# Build the packages and check them: contents, a Debian root made with debootstrap (as root),
# systemd-analyze verify, the arm binaries under qemu-user-static. EDGED_DEB_BOOT=1 also boots it.
deb-test:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' packaging/test-deb.sh

# The fault suites (faults/, build tag "faults"), run against ./edged from outside. Each prints its
# figures (FIGURES lines). EDGED_FAULT_SEED repeats a run's random choices; EDGED_FAULT_DURABILITY sets
# [buffer] durability (unset: edged's default).
FAULTS_TEST = EDGED_BIN='$(CURDIR)/edged' go test -tags faults -count=1 -v

# Power cuts: edged's state on LazyFS (root and /dev/fuse), built once from LAZYFS_SRC into LAZYFS_DIR.
# EDGED_POWERCUT_CUTS sets the number of cuts (default 60).
LAZYFS_SRC ?= ../shared/tools/lazyfs
LAZYFS_DIR ?= $(HOME)/.cache/edged/lazyfs
powercut: build
	go vet -tags faults ./faults
	faults/build-lazyfs.sh '$(LAZYFS_SRC)' '$(LAZYFS_DIR)'
	EDGED_LAZYFS='$(LAZYFS_DIR)/lazyfs' $(FAULTS_TEST) -timeout 10m -run '^TestPowerCut' ./faults

# Kill loops, a flapping and blackholed uplink, damaged buffer files, a tiny partition (as root).
# Loopback only, bounded; longer than the power-cut suite and not part of `make test` or CI.
chaos: build
	go vet -tags faults ./faults
	$(FAULTS_TEST) -timeout 60m -run '^TestChaos' ./faults

clean:
	rm -rf edged dist

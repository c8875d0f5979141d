# edged — build and test. Go comes from PATH, or /usr/local/go/bin.
export PATH := $(PATH):/usr/local/go/bin
export CGO_ENABLED := 0

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test lint race bench demo deb deb-test clean

build:
	go build -trimpath -ldflags "$(LDFLAGS)" -o edged ./cmd/edged

test:
	go vet ./...
	go test -count=1 -timeout 15m ./...

# go vet and staticcheck (fetched by the go command at a fixed version; nothing to install).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	go vet ./...
	go run $(STATICCHECK) ./...

# The whole suite under the race detector (needs cgo and a C compiler).
race:
	CGO_ENABLED=1 go test -race -count=1 -timeout 20m ./...

bench:
	go test -run '^$$' -bench . -benchtime 1x ./...

demo: build
	./edged demo

# dist/edged_<version>_{arm64,armhf,amd64}.deb, with dpkg-deb: no root, no cross toolchain.
deb:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' packaging/build-deb.sh

# Build the packages and check them: contents, a Debian root made with debootstrap (as root),
# systemd-analyze verify, the arm binaries under qemu-user-static. EDGED_DEB_BOOT=1 also boots it.
deb-test:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' packaging/test-deb.sh

clean:
	rm -rf edged dist

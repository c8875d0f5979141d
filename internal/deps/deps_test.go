package deps

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/edged/edged"

// rule says which of edged's packages the packages under prefix may import
// in their non-test files. A prefix ending in "/" covers a tree; otherwise
// it names one package. The first matching rule applies.
type rule struct {
	prefix string
	may    []string // import prefixes (same "/" convention)
	why    string
}

// rules mirror docs/ARCHITECTURE.md, "Dependency rules". Keep them in step.
var rules = []rule{
	{"telemetry", nil, "the shared vocabulary imports nothing of edged"},
	{"liveness", nil, "progress records import nothing of edged"},
	{"sqlitefile", nil, "opening a SQLite file knows no part and no schema"},
	{"config", []string{"telemetry", "mqttauth", "tlsfiles", "cloudauth"}, "config validates; it knows no part"},
	{"cloudauth", nil, "cloud logins are computed from a key and a time alone"},
	{"mqttauth", []string{"telemetry"}, "the users-file and ACL formats stand alone"},
	{"tlsfiles", nil, "the TLS file loader stands alone"},
	{"buffer", []string{"telemetry", "liveness", "sqlitefile"}, "the buffer imports no other part"},
	{"broker", []string{"config", "telemetry", "mqttauth", "tlsfiles", "liveness", "sqlitefile"}, "the broker knows no devices, no buffer and no uplink"},
	{"bridge", []string{"buffer", "config", "telemetry", "tlsfiles", "liveness", "cloudauth"}, "the bridge drains the buffer; it knows no broker and no devices"},
	{"homeassistant", []string{"config", "telemetry"}, "discovery announces the config; it knows no part"},
	{"adapters/internal/", []string{"config", "telemetry", "liveness", "adapters/internal/"}, "adapter mechanics know no part"},
	{"adapters/modbus/modbussim", []string{"config", "telemetry"}, "a simulator knows no part"},
	{"adapters/serialline/linesim", []string{"config", "telemetry"}, "a simulator knows no part"},
	{"adapters/", []string{"config", "telemetry", "liveness", "adapters/internal/"}, "adapters never import the broker, the bridge, the buffer or each other"},
	{"observe", []string{"adapters/modbus", "adapters/serialline", "adapters/at", "broker", "bridge", "config", "telemetry"}, "the HTTP server reads the parts' counters; it wires and changes nothing"},
	{"internal/testpeer", []string{"telemetry", "config"}, "test peers are imported by tests only"},
	{"config/configtest", []string{"config"}, "a part's tests take their config as config.Check completes it"},
	{"internal/deps", nil, "this test"},
	{"faults", nil, "the fault suites drive the built binary from outside; all their code is tests"},
	{"bench/", []string{"broker", "config"}, "benchmarks drive the built binary and peers; a profile runs the broker alone"},
	{"cmd/edged", []string{"adapters/", "broker", "bridge", "buffer", "config", "telemetry", "mqttauth", "liveness", "homeassistant", "observe"}, "cmd/edged wires the parts"},
}

// testOnly packages may be imported by _test.go files only.
var testOnly = []string{"internal/testpeer", "config/configtest"}

func matches(pkg, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(pkg+"/", prefix)
	}
	return pkg == prefix
}

func ruleFor(pkg string) (rule, bool) {
	for _, r := range rules {
		if matches(pkg, r.prefix) {
			return r, true
		}
	}
	return rule{}, false
}

// imports returns, per package directory relative to the module root, the
// edged packages its Go files import, split into non-test and test imports.
func imports(t *testing.T, root string) (code, tests map[string][]string) {
	t.Helper()
	code, tests = map[string][]string{}, map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "dist") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		pkg := filepath.ToSlash(rel)
		into := code
		if strings.HasSuffix(p, "_test.go") {
			into = tests
		}
		for _, s := range f.Imports {
			ip, err := strconv.Unquote(s.Path.Value)
			if err != nil {
				return err
			}
			if own, ok := strings.CutPrefix(ip, module+"/"); ok && !slices.Contains(into[pkg], own) {
				into[pkg] = append(into[pkg], own)
			}
		}
		if _, ok := into[pkg]; !ok {
			into[pkg] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return code, tests
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = up
	}
}

func TestEveryPackageKeepsItsDependencyRule(t *testing.T) {
	code, tests := imports(t, moduleRoot(t))
	if len(code) < 8 {
		t.Fatalf("found only %d packages; is the walk broken?", len(code))
	}
	for pkg, imps := range code {
		r, ok := ruleFor(pkg)
		if !ok {
			t.Errorf("%s: no dependency rule; add one to docs/ARCHITECTURE.md and to rules in this test", pkg)
			continue
		}
		for _, imp := range imps {
			if slices.ContainsFunc(testOnly, func(p string) bool { return matches(imp, p) }) {
				t.Errorf("%s imports %s, which only tests may import", pkg, imp)
				continue
			}
			if matches(imp, pkg) || (path.Dir(imp) == pkg) {
				continue // a package's own sub-packages (simulators) are its business
			}
			if !slices.ContainsFunc(r.may, func(p string) bool { return matches(imp, p) }) {
				t.Errorf("%s imports %s: %s (allowed: %v)", pkg, imp, r.why, r.may)
			}
		}
	}
	for pkg, imps := range tests {
		for _, imp := range imps {
			if strings.HasPrefix(imp, "cmd/") {
				t.Errorf("%s's tests import %s: nothing imports the binary", pkg, imp)
			}
		}
	}
}

// TestTheRulesCatchABreak makes sure the check above can fail: an adapter
// that imports the broker, or the buffer that imports the bridge, is caught.
func TestTheRulesCatchABreak(t *testing.T) {
	for _, c := range []struct{ pkg, imp string }{
		{"adapters/modbus", "broker"},
		{"adapters/at", "buffer"},
		{"adapters/at", "adapters/serialline"},
		{"adapters/internal/mqttdevice", "broker"},
		{"buffer", "bridge"},
		{"broker", "adapters/modbus"},
		{"telemetry", "config"},
		{"bridge", "broker"},
		{"homeassistant", "broker"},
		{"homeassistant", "adapters/modbus"},
		{"broker", "observe"},
		{"adapters/modbus", "observe"},
		{"observe", "adapters/internal/mqttdevice"},
	} {
		r, ok := ruleFor(c.pkg)
		if !ok {
			t.Errorf("%s has no rule", c.pkg)
			continue
		}
		if slices.ContainsFunc(r.may, func(p string) bool { return matches(c.imp, p) }) {
			t.Errorf("%s may import %s, but the architecture forbids it", c.pkg, c.imp)
		}
	}
}

package testpeer

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Home Assistant cannot run here, so this file stands in for the part of
// it that reads MQTT discovery: the field rules of its MQTT discovery
// documentation (required keys, the keys each platform takes, enumerations)
// and an evaluator for the few template forms a config may use.

// HAConfig is a discovery config that passed CheckHADiscovery.
type HAConfig struct {
	Platform string
	Fields   map[string]any
}

// Str is a string field, "" when absent.
func (c HAConfig) Str(key string) string { s, _ := c.Fields[key].(string); return s }

// Num is a number field and whether it is there.
func (c HAConfig) Num(key string) (float64, bool) { f, ok := c.Fields[key].(float64); return f, ok }

// Availability lists the availability entries as topic → value_template.
func (c HAConfig) Availability() [][2]string {
	var out [][2]string
	list, _ := c.Fields["availability"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		t, _ := m["topic"].(string)
		v, _ := m["value_template"].(string)
		out = append(out, [2]string{t, v})
	}
	return out
}

var haDiscoveryTopic = regexp.MustCompile(`^(.+)/(sensor|binary_sensor|switch|number)/(?:([a-zA-Z0-9_-]+)/)?([a-zA-Z0-9_-]+)/config$`)

// Keys every entity platform takes, and those of each platform.
var (
	haCommonKeys = []string{"availability", "availability_mode", "availability_topic", "availability_template",
		"payload_available", "payload_not_available", "device", "origin", "enabled_by_default", "encoding",
		"entity_category", "entity_picture", "icon", "json_attributes_topic", "json_attributes_template",
		"name", "object_id", "default_entity_id", "qos", "unique_id", "device_class", "platform"}
	haPlatformKeys = map[string][]string{
		"sensor": {"state_topic", "value_template", "unit_of_measurement", "state_class", "suggested_display_precision",
			"expire_after", "force_update", "last_reset_value_template", "options"},
		"binary_sensor": {"state_topic", "value_template", "payload_on", "payload_off", "expire_after", "force_update", "off_delay"},
		"switch": {"state_topic", "value_template", "command_topic", "command_template", "payload_on", "payload_off",
			"state_on", "state_off", "optimistic", "retain"},
		"number": {"state_topic", "value_template", "command_topic", "command_template", "min", "max", "step", "mode",
			"unit_of_measurement", "payload_reset", "optimistic", "retain"},
	}
	haRequired = map[string][]string{
		"sensor": {"state_topic"}, "binary_sensor": {"state_topic"}, "switch": {"command_topic"}, "number": {"command_topic"},
	}
	haDeviceKeys = []string{"configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
		"model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device"}
	haOriginKeys = []string{"name", "sw_version", "support_url"}
	// Units Home Assistant accepts for the device classes edged sets.
	haClassUnits = map[string][]string{
		"voltage": {"V", "mV", "µV", "kV", "MV"}, "current": {"A", "mA"}, "power": {"W", "kW", "MW", "GW", "TW", "mW", "BTU/h"},
		"apparent_power": {"VA", "mVA", "kVA"}, "reactive_power": {"var", "mvar", "kvar"},
		"energy":    {"Wh", "kWh", "MWh", "GWh", "TWh", "mWh", "MJ", "GJ", "cal", "kcal", "Mcal", "Gcal"},
		"frequency": {"Hz", "kHz", "MHz", "GHz"}, "temperature": {"°C", "°F", "K"}, "humidity": {"%"},
		"pressure": {"Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi"}, "duration": {"d", "h", "min", "s", "ms"},
	}
)

// CheckHADiscovery reads a discovery message as Home Assistant does and
// returns every rule it breaks. deviceClasses lists the classes a platform
// accepts (config.HADeviceClasses).
func CheckHADiscovery(topic string, payload []byte, deviceClasses func(platform string) []string) (HAConfig, []string) {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	m := haDiscoveryTopic.FindStringSubmatch(topic)
	if m == nil {
		return HAConfig{}, []string{"topic is not <prefix>/<component>/[<node_id>/]<object_id>/config with ids of [a-zA-Z0-9_-]"}
	}
	c := HAConfig{Platform: m[2]}
	if err := json.Unmarshal(payload, &c.Fields); err != nil {
		return c, []string{"payload is not a JSON object: " + err.Error()}
	}
	allowed := append(slices.Clone(haCommonKeys), haPlatformKeys[c.Platform]...)
	for k := range c.Fields {
		if !slices.Contains(allowed, k) {
			fail("%s takes no key %q", c.Platform, k)
		}
	}
	for _, k := range haRequired[c.Platform] {
		if c.Str(k) == "" {
			fail("%s requires %s", c.Platform, k)
		}
	}
	if _, ok := c.Fields["name"]; !ok {
		fail("no name (null for the device's name)")
	}
	if c.Str("unique_id") == "" {
		fail("no unique_id: an entity without one has no device and cannot be renamed in the UI")
	}
	checkHADevice(c.Fields["device"], fail)
	if o, ok := c.Fields["origin"].(map[string]any); ok {
		checkKeys("origin", o, haOriginKeys, fail)
		if s, _ := o["name"].(string); s == "" {
			fail("origin requires name")
		}
	}
	if _, ok := c.Fields["availability"]; ok {
		if _, both := c.Fields["availability_topic"]; both {
			fail("availability and availability_topic must not be used together")
		}
		list, ok := c.Fields["availability"].([]any)
		if !ok || len(list) == 0 {
			fail("availability is not a non-empty list")
		}
		for i, e := range c.Availability() {
			if e[0] == "" {
				fail("availability[%d] requires topic", i)
			}
			if e[1] != "" {
				if err := CheckHATemplate(e[1]); err != nil {
					fail("availability[%d].value_template: %v", i, err)
				}
			}
		}
	}
	if mode := c.Str("availability_mode"); mode != "" && !slices.Contains([]string{"all", "any", "latest"}, mode) {
		fail("availability_mode %q is not all, any or latest", mode)
	}
	if t := c.Str("value_template"); t != "" {
		if err := CheckHATemplate(t); err != nil {
			fail("value_template: %v", err)
		}
	}
	cat := c.Str("entity_category")
	switch {
	case cat != "" && cat != "config" && cat != "diagnostic":
		fail("entity_category %q is not config or diagnostic", cat)
	case cat == "config" && (c.Platform == "sensor" || c.Platform == "binary_sensor"):
		fail("a %s cannot be a config entity", c.Platform)
	}
	if icon := c.Str("icon"); icon != "" && !strings.Contains(icon, ":") {
		fail("icon %q is not prefix:name", icon)
	}
	class := c.Str("device_class")
	if class != "" && !slices.Contains(deviceClasses(c.Platform), class) {
		fail("device_class %q is not one of the %s platform", class, c.Platform)
	}
	switch c.Platform {
	case "sensor":
		checkHASensor(c, class, fail)
	case "number":
		lo, okLo := c.Num("min")
		hi, okHi := c.Num("max")
		step, okStep := c.Num("step")
		if !okLo || !okHi || lo >= hi {
			fail("number min %v must be below max %v (the defaults 1 and 100 are rarely a register's range)", c.Fields["min"], c.Fields["max"])
		}
		if okStep && step < 0.001 {
			fail("number step %v is below 0.001", step)
		}
		if mode := c.Str("mode"); mode != "" && !slices.Contains([]string{"auto", "box", "slider"}, mode) {
			fail("number mode %q is not auto, box or slider", mode)
		}
		if u := c.Str("unit_of_measurement"); class != "" && u != "" && haClassUnits[class] != nil && !slices.Contains(haClassUnits[class], u) {
			fail("unit %q is not one of device class %s: %v", u, class, haClassUnits[class])
		}
	}
	return c, errs
}

func checkHASensor(c HAConfig, class string, fail func(string, ...any)) {
	sc := c.Str("state_class")
	if sc != "" && !slices.Contains([]string{"measurement", "measurement_angle", "total", "total_increasing"}, sc) {
		fail("state_class %q is not measurement, total or total_increasing", sc)
	}
	if class == "energy" && sc != "total" && sc != "total_increasing" {
		fail("an energy sensor needs state_class total or total_increasing, got %q", sc)
	}
	u := c.Str("unit_of_measurement")
	if class != "" && haClassUnits[class] != nil && !slices.Contains(haClassUnits[class], u) {
		fail("unit %q is not one of device class %s: %v", u, class, haClassUnits[class])
	}
	if v, ok := c.Fields["suggested_display_precision"]; ok {
		f, isNum := v.(float64)
		if !isNum || f < 0 || f != math.Trunc(f) {
			fail("suggested_display_precision %v is not a whole number of decimals", v)
		}
	}
}

func checkHADevice(v any, fail func(string, ...any)) {
	if v == nil {
		return
	}
	d, ok := v.(map[string]any)
	if !ok {
		fail("device is not a map")
		return
	}
	checkKeys("device", d, haDeviceKeys, fail)
	ids, _ := d["identifiers"].([]any)
	conns, _ := d["connections"].([]any)
	if len(ids) == 0 && len(conns) == 0 {
		fail("device requires identifiers or connections")
	}
}

func checkKeys(what string, m map[string]any, allowed []string, fail func(string, ...any)) {
	for k := range m {
		if !slices.Contains(allowed, k) {
			fail("%s takes no key %q", what, k)
		}
	}
}

// The template evaluator knows these forms, which are Jinja as Home
// Assistant renders it:
//
//	{{ TERM }}
//	{{ TERM if COND else TERM }}
//
// TERM is value, value_json.KEY, None or a 'quoted string'; COND is
// 'KEY' in value_json, value_json is mapping, or value_json.KEY (truthy).
var (
	haTemplate     = regexp.MustCompile(`^\{\{ (.+?)(?: if (.+) else (.+?))? \}\}$`)
	haTermJSONKey  = regexp.MustCompile(`^value_json\.([a-z_]+)$`)
	haTermQuoted   = regexp.MustCompile(`^'([^']*)'$`)
	haCondHasKey   = regexp.MustCompile(`^'([a-z_]+)' in value_json$`)
	haCondIsObject = "value_json is mapping"
)

// CheckHATemplate reports a template outside the forms RenderHATemplate knows.
func CheckHATemplate(tmpl string) error {
	m := haTemplate.FindStringSubmatch(tmpl)
	if m == nil {
		return fmt.Errorf("%q is not a template form this evaluator knows", tmpl)
	}
	for _, term := range []string{m[1], m[3]} {
		if term != "" && term != "value" && term != "None" && !haTermQuoted.MatchString(term) && !haTermJSONKey.MatchString(term) {
			return fmt.Errorf("term %q is not a form this evaluator knows", term)
		}
	}
	if c := m[2]; c != "" && c != haCondIsObject && !haCondHasKey.MatchString(c) && !haTermJSONKey.MatchString(c) {
		return fmt.Errorf("condition %q is not a form this evaluator knows", c)
	}
	return nil
}

// RenderHATemplate renders tmpl on a message payload as Home Assistant's
// MQTT integration does: value is the payload text, value_json its JSON
// (undefined when the payload is not JSON), and Python's str() of the
// result is the output (True, None, 230.5).
func RenderHATemplate(tmpl string, payload []byte) (string, error) {
	m := haTemplate.FindStringSubmatch(tmpl)
	if m == nil {
		return "", fmt.Errorf("%q is not a template form this evaluator knows", tmpl)
	}
	var doc any
	isJSON := json.Unmarshal(payload, &doc) == nil
	if m[2] == "" {
		return haTerm(m[1], payload, doc, isJSON)
	}
	cond, err := haCond(m[2], doc, isJSON)
	if err != nil {
		return "", err
	}
	if cond {
		return haTerm(m[1], payload, doc, isJSON)
	}
	return haTerm(m[3], payload, doc, isJSON)
}

func haTerm(term string, payload []byte, doc any, isJSON bool) (string, error) {
	switch {
	case term == "value":
		return string(payload), nil
	case term == "None":
		return "None", nil
	case haTermQuoted.MatchString(term):
		return haTermQuoted.FindStringSubmatch(term)[1], nil
	case haTermJSONKey.MatchString(term):
		key := haTermJSONKey.FindStringSubmatch(term)[1]
		obj, ok := doc.(map[string]any)
		if !isJSON || !ok {
			return "", fmt.Errorf("value_json.%s of a payload that is no JSON object: %q", key, payload)
		}
		v, ok := obj[key]
		if !ok {
			return "", fmt.Errorf("value_json.%s is undefined in %s", key, payload)
		}
		return pythonStr(v), nil
	}
	return "", fmt.Errorf("term %q is not a form this evaluator knows", term)
}

func haCond(cond string, doc any, isJSON bool) (bool, error) {
	obj, isObj := doc.(map[string]any)
	isObj = isObj && isJSON
	switch {
	case cond == haCondIsObject:
		return isObj, nil
	case haCondHasKey.MatchString(cond):
		if !isJSON {
			return false, fmt.Errorf("%q on a payload that is not JSON (value_json undefined)", cond)
		}
		if !isObj {
			return false, fmt.Errorf("%q on JSON that is not an object", cond)
		}
		_, ok := obj[haCondHasKey.FindStringSubmatch(cond)[1]]
		return ok, nil
	case haTermJSONKey.MatchString(cond):
		if !isObj {
			return false, fmt.Errorf("%q on a payload that is no JSON object", cond)
		}
		v := obj[haTermJSONKey.FindStringSubmatch(cond)[1]]
		switch x := v.(type) {
		case nil:
			return false, nil
		case bool:
			return x, nil
		case float64:
			return x != 0, nil
		case string:
			return x != "", nil
		}
		return true, nil
	}
	return false, fmt.Errorf("condition %q is not a form this evaluator knows", cond)
}

// pythonStr renders a JSON value as Python's str() does after json.loads.
func pythonStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e16 {
			return strconv.FormatInt(int64(x), 10) // an integer in the JSON stays an int
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

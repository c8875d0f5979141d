package homeassistant

import (
	"cmp"
	"hash/fnv"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/edged/edged/config"
	"github.com/edged/edged/telemetry"
)

// The templates edged emits, few and fixed so that a test can evaluate
// each of them on real payloads. A JSON payload carries "value" when the
// reading is good and "quality" when it is not; a bare payload is the value
// itself, and a bad reading is still a JSON object.
const (
	valueJSON        = "{{ value_json.value if 'value' in value_json else None }}"
	availableJSON    = "{{ 'online' if 'value' in value_json else 'offline' }}"
	valueBare        = "{{ None if value_json is mapping else value }}"
	availableBare    = "{{ 'offline' if value_json is mapping else 'online' }}"
	uplinkConnected  = "{{ 'ON' if value_json.connected else 'OFF' }}"
	uplinkBuffered   = "{{ value_json.buffered }}"
	uplinkOldestAge  = "{{ value_json.oldest_age_s }}"
	statsOffline     = "{{ value_json.devices_offline }}"
	supportURL       = "https://github.com/edged/edged"
	availabilityMode = "all"
)

// Templates lists every template edged puts in a discovery config, for the
// tests that evaluate them.
var Templates = []string{valueJSON, availableJSON, valueBare, availableBare, uplinkConnected, uplinkBuffered, uplinkOldestAge, statsOffline}

// announcement is one retained discovery message.
type announcement struct {
	topic   string
	payload entity
}

// builder turns the config into announcements.
type builder struct {
	prefix  string
	gateway string
	node    string // the gateway's id as a discovery node id
	version string
	uplink  bool
	out     []announcement
}

// uniqueID is stable across restarts and reorderings: it is made of names
// only. Levels are topic levels, which never hold '/', so no two points
// share one; the gateway's own entities use an empty device level, which
// no device has.
func (b *builder) uniqueID(deviceName, point string) string {
	return "edged-" + b.gateway + "/" + deviceName + "/" + point
}

func (b *builder) gatewayIdentifier() string { return "edged-" + b.gateway }

// ownsUniqueID reports whether a config with this unique_id came from
// this gateway's edged.
func (b *builder) ownsUniqueID(id string) bool {
	return strings.HasPrefix(id, "edged-"+b.gateway+"/")
}

// topic is the discovery topic <prefix>/<platform>/<node>/<object>/config.
// A device's entities share the node <gateway>_<device>, the gateway's
// own have <gateway>: device names are unique, so nodes are.
func (b *builder) topic(platform, deviceName, object string) string {
	node := b.node
	if deviceName != "" {
		node += "_" + idPart(deviceName)
	}
	return b.prefix + "/" + platform + "/" + node + "/" + idPart(object) + "/config"
}

// idPart makes a name usable as a node or object id, which Home Assistant
// limits to letters, digits, '_' and '-'. A name that needed changing gets
// a short hash of itself, so two names never meet in one id.
func idPart(s string) string {
	ok := s != ""
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			out[i] = '_'
			ok = false
		}
	}
	if ok {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(s))
	return string(out) + "_" + strconv.FormatUint(uint64(h.Sum32()), 36)
}

// humanName turns a point name into an entity name: import_active_energy
// becomes "Import active energy".
func humanName(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '_' || r == '-' }), " ")
	r := []rune(s)
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}

func (b *builder) origin() origin {
	return origin{Name: "edged", SWVersion: b.version, SupportURL: supportURL}
}

func (b *builder) gatewayDevice() device {
	return device{
		Identifiers:  []string{b.gatewayIdentifier()},
		Name:         "edged " + b.gateway,
		Manufacturer: "edged",
		Model:        "edged gateway",
		SWVersion:    b.version,
	}
}

// deviceInfo is a device's entry, named by its override or its name,
// reached through the gateway.
func (b *builder) deviceInfo(name string, h *config.HAEntity) device {
	d := device{Identifiers: []string{b.gatewayIdentifier() + "/" + name}, Name: name, ViaDevice: b.gatewayIdentifier()}
	if h != nil {
		d.Name = cmp.Or(h.Name, name)
		d.Manufacturer, d.Model = h.Manufacturer, h.Model
	}
	return d
}

func hidden(h *config.HAEntity) bool { return h != nil && h.Hidden }

// build announces every device and point of cfg, and the gateway.
func (b *builder) build(cfg *config.Config) {
	b.gatewayEntities()
	for _, bus := range cfg.Modbus {
		for _, d := range bus.Devices {
			if hidden(d.HomeAssistant) {
				continue
			}
			dev := b.deviceInfo(d.Name, d.HomeAssistant)
			for _, p := range d.Points {
				if hidden(p.HomeAssistant) {
					continue
				}
				b.modbusPoint(dev, d, p)
			}
		}
	}
	for _, s := range cfg.Serial {
		if !hidden(s.HomeAssistant) {
			b.groupSensors(b.deviceInfo(s.Name, s.HomeAssistant), s.Name, s.Topic, s.Payload, s.Patterns)
		}
	}
	for _, a := range cfg.AT {
		if hidden(a.HomeAssistant) {
			continue
		}
		var patterns []string
		for _, q := range a.Queries {
			patterns = append(patterns, q.Pattern)
		}
		for _, u := range a.URCs {
			patterns = append(patterns, u.Pattern)
		}
		b.groupSensors(b.deviceInfo(a.Name, a.HomeAssistant), a.Name, a.Topic, a.Payload, patterns)
	}
}

// pointEntity is the part of a point's config that every platform shares:
// state, availability, device.
func (b *builder) pointEntity(dev device, deviceName, tmpl, payload, point string) entity {
	topic := telemetry.Template(tmpl).Expand(b.gateway, deviceName, point)
	value, available := valueJSON, availableJSON
	if payload == "value" {
		value, available = valueBare, availableBare
	}
	return entity{
		Name:          humanName(point),
		UniqueID:      b.uniqueID(deviceName, point),
		StateTopic:    topic,
		ValueTemplate: value,
		Availability: []availability{
			{Topic: telemetry.GatewayStatusTopic(b.gateway)},
			{Topic: telemetry.StatusTopic(b.gateway, deviceName)},
			{Topic: topic, ValueTemplate: available},
		},
		AvailabilityMode: availabilityMode,
		Device:           dev,
		Origin:           b.origin(),
		platform:         config.HASensor,
	}
}

func (b *builder) add(deviceName, object string, e entity) {
	b.out = append(b.out, announcement{topic: b.topic(e.platform, deviceName, object), payload: e})
}

func (b *builder) modbusPoint(dev device, d config.Device, p config.Point) {
	e := b.pointEntity(dev, d.Name, d.Topic, d.Payload, p.Name)
	e.platform = p.HAPlatform()
	numeric := p.Type != "bool" && p.Type != "string"
	if numeric {
		e.DeviceClass, e.Unit, e.StateClass = classify(p.Unit, p.Name)
		e.Precision = p.Decimals()
	}
	if h := p.HomeAssistant; h != nil {
		e.Name = cmp.Or(h.Name, e.Name)
		e.Icon = h.Icon
		if h.DeviceClass != "" {
			e.DeviceClass = h.DeviceClass
			e.StateClass = stateClassOf(h.DeviceClass)
		}
	}
	on, off := "True", "False" // how the JSON template renders a bool
	if d.Payload == "value" {
		on, off = "true", "false" // the bare payload
	}
	switch e.platform {
	case config.HABinarySensor:
		e.PayloadOn, e.PayloadOff = on, off
	case config.HASwitch:
		e.CommandTopic = e.StateTopic + "/set"
		e.PayloadOn, e.PayloadOff = "true", "false"
		e.StateOn, e.StateOff = on, off
	case config.HANumber:
		e.CommandTopic = e.StateTopic + "/set"
		e.StateClass, e.Precision = "", nil // a number has neither
		e.Min, e.Max, e.Step = numberRange(p)
		e.Mode = "box"
	}
	b.add(d.Name, p.Name, e)
}

// groupSensors announces a sensor for every named group of a serial
// device's or AT module's patterns: their values are numbers or text, only
// known when they arrive, so they get no unit or class.
func (b *builder) groupSensors(dev device, deviceName, tmpl, payload string, patterns []string) {
	seen := map[string]bool{}
	for _, pat := range patterns {
		re, err := regexp.Compile(pat)
		if err != nil {
			continue // config refused it already; the adapter will not start
		}
		for _, g := range re.SubexpNames() {
			if g == "" || seen[g] {
				continue
			}
			seen[g] = true
			b.add(deviceName, g, b.pointEntity(dev, deviceName, tmpl, payload, g))
		}
	}
}

// gatewayEntities are edged's own health on the gateway device.
func (b *builder) gatewayEntities() {
	base := func(name, object, topic, tmpl string) entity {
		return entity{
			Name: name, UniqueID: b.uniqueID("", object), StateTopic: topic, ValueTemplate: tmpl,
			Availability:     []availability{{Topic: telemetry.GatewayStatusTopic(b.gateway)}},
			AvailabilityMode: availabilityMode, Device: b.gatewayDevice(), Origin: b.origin(),
			EntityCategory: "diagnostic", platform: config.HASensor,
		}
	}
	stats := b.gateway + "/edged/stats"
	offline := base("Devices offline", "devices_offline", stats, statsOffline)
	offline.StateClass, offline.Icon = "measurement", "mdi:lan-disconnect"
	b.add("", "devices_offline", offline)
	if !b.uplink {
		return
	}
	uplink := b.gateway + "/edged/uplink"
	connected := base("Uplink connected", "uplink_connected", uplink, uplinkConnected)
	connected.platform, connected.DeviceClass = config.HABinarySensor, "connectivity"
	connected.PayloadOn, connected.PayloadOff = "ON", "OFF"
	b.add("", "uplink_connected", connected)
	buffered := base("Messages buffered", "messages_buffered", uplink, uplinkBuffered)
	buffered.StateClass, buffered.Unit, buffered.Icon = "measurement", "messages", "mdi:tray-full"
	b.add("", "messages_buffered", buffered)
	age := base("Oldest buffered age", "oldest_buffered_age", uplink, uplinkOldestAge)
	age.DeviceClass, age.StateClass, age.Unit, age.Precision = "duration", "measurement", "s", ptr(0)
	b.add("", "oldest_buffered_age", age)
}

func ptr[T any](v T) *T { return &v }

// classify maps a unit (and a humidity point's name) to Home Assistant's
// device class, the unit it expects and the state class.
func classify(unit, name string) (class, outUnit, state string) {
	class = unitClasses[unit]
	outUnit = unit
	switch {
	case unit == "%RH":
		class, outUnit = "humidity", "%"
	case class == "" && (unit == "%" || unit == "") && strings.Contains(strings.ToLower(name), "humidity"):
		class, outUnit = "humidity", "%"
	}
	state = stateClassOf(class)
	if unit == "varh" || unit == "kvarh" {
		// A reactive energy counter; its device class is too recent to
		// announce (an older Home Assistant refuses the whole config).
		state = "total_increasing"
	}
	return class, outUnit, state
}

var unitClasses = map[string]string{
	"V": "voltage", "mV": "voltage", "kV": "voltage",
	"A": "current", "mA": "current",
	"W": "power", "kW": "power", "MW": "power",
	"VA": "apparent_power", "kVA": "apparent_power",
	"var": "reactive_power", "kvar": "reactive_power",
	"Wh": "energy", "kWh": "energy", "MWh": "energy",
	"Hz": "frequency", "kHz": "frequency",
	"°C": "temperature", "°F": "temperature", "K": "temperature",
	"Pa": "pressure", "hPa": "pressure", "kPa": "pressure", "bar": "pressure", "mbar": "pressure", "psi": "pressure",
}

// stateClassOf is the state class a device class takes: counters that only
// grow are total_increasing (Home Assistant's energy dashboard needs it),
// classes without statistics get none, the rest are measurements.
func stateClassOf(class string) string {
	switch class {
	case "energy", "gas", "water", "reactive_energy":
		return "total_increasing"
	case "date", "enum", "timestamp", "monetary":
		return ""
	}
	return "measurement"
}

// rawRange is the range a register type holds.
var rawRange = map[string][2]float64{
	"int16": {math.MinInt16, math.MaxInt16}, "uint16": {0, math.MaxUint16},
	"int32": {math.MinInt32, math.MaxInt32}, "uint32": {0, math.MaxUint32},
	"int64": {math.MinInt64, math.MaxInt64}, "uint64": {0, math.MaxUint64},
	"float32": {-math.MaxFloat32, math.MaxFloat32}, "float64": {-math.MaxFloat64, math.MaxFloat64},
}

// minStep is the smallest step Home Assistant's number platform takes.
const minStep = 0.001

// numberRange is the range a writable register can be set to, as the
// value people see (raw * scale + offset), and the step between two raw
// values: the scale for integer registers, the precision for floats.
func numberRange(p config.Point) (lo, hi, step *float64) {
	r := rawRange[p.Type]
	scale := 1.0
	if p.Scale != nil {
		scale = *p.Scale
	}
	a, z := r[0]*scale+p.Offset, r[1]*scale+p.Offset
	if a > z {
		a, z = z, a
	}
	s := math.Abs(scale)
	if strings.HasPrefix(p.Type, "float") {
		s = minStep
		if p.Precision != nil {
			s = math.Pow10(-*p.Precision)
		}
	} else if p.Precision != nil {
		s = max(s, math.Pow10(-*p.Precision))
	}
	s = max(s, minStep)
	if d := p.Decimals(); d != nil && !strings.HasPrefix(p.Type, "float") {
		// -32768 * 0.1 is -3276.8000000000002 in floating point; the ends
		// are rounded inwards, so that both can be written.
		a, z = inwards(a, *d, math.Ceil), inwards(z, *d, math.Floor)
	}
	return &a, &z, &s
}

// inwards rounds f to d decimals with round (math.Ceil or math.Floor),
// after taking off the floating-point noise below them.
func inwards(f float64, d int, round func(float64) float64) float64 {
	clean, err := strconv.ParseFloat(strconv.FormatFloat(f, 'f', d+6, 64), 64)
	if err != nil {
		return f
	}
	m := math.Pow10(d)
	return round(clean*m) / m
}

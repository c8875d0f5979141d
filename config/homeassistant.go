package config

import (
	"slices"
	"strings"
)

// DefaultHomeAssistantPrefix is Home Assistant's own default discovery prefix.
const DefaultHomeAssistantPrefix = "homeassistant"

// Home Assistant entity platforms a point can become.
const (
	HASensor       = "sensor"
	HABinarySensor = "binary_sensor"
	HASwitch       = "switch"
	HANumber       = "number"
)

// HAPlatform is the Home Assistant platform a point appears on: a switch
// for a writable bool (coil or register bit), a number for another
// writable register that holds a number, a binary_sensor for a read-only
// bool, a sensor for the rest.
func (p Point) HAPlatform() string {
	switch {
	case p.Type == "bool" && p.Writable:
		return HASwitch
	case p.Type == "bool":
		return HABinarySensor
	case p.Writable && p.Type != "string":
		return HANumber
	}
	return HASensor
}

// haSensorClasses are the device classes of Home Assistant's sensor
// platform; a number takes the same but date, enum and timestamp.
var haSensorClasses = []string{
	"apparent_power", "aqi", "area", "atmospheric_pressure", "battery", "blood_glucose_concentration",
	"carbon_dioxide", "carbon_monoxide", "conductivity", "current", "data_rate", "data_size", "date",
	"distance", "duration", "energy", "energy_distance", "energy_storage", "enum", "frequency", "gas",
	"humidity", "illuminance", "irradiance", "moisture", "monetary", "nitrogen_dioxide",
	"nitrogen_monoxide", "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power", "power_factor",
	"precipitation", "precipitation_intensity", "pressure", "reactive_energy", "reactive_power",
	"signal_strength", "sound_pressure", "speed", "sulphur_dioxide", "temperature", "timestamp",
	"volatile_organic_compounds", "volatile_organic_compounds_parts", "voltage", "volume",
	"volume_flow_rate", "volume_storage", "water", "weight", "wind_direction", "wind_speed",
}

var haBinaryClasses = []string{
	"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door",
	"gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug",
	"power", "presence", "problem", "running", "safety", "smoke", "sound", "tamper", "update",
	"vibration", "window",
}

var haSwitchClasses = []string{"outlet", "switch"}

// HADeviceClasses lists the device classes Home Assistant accepts on a platform.
func HADeviceClasses(platform string) []string {
	switch platform {
	case HABinarySensor:
		return haBinaryClasses
	case HASwitch:
		return haSwitchClasses
	case HANumber:
		return slices.DeleteFunc(slices.Clone(haSensorClasses), func(c string) bool {
			return c == "date" || c == "enum" || c == "timestamp"
		})
	}
	return haSensorClasses
}

// homeAssistant checks [homeassistant]: the prefix is the first levels of
// every discovery topic.
func (v *validator) homeAssistant(h *HomeAssistant) {
	if h.Prefix == "" || strings.ContainsAny(h.Prefix, "+#") || strings.HasPrefix(h.Prefix, "$") {
		v.errorf("homeassistant.prefix", "%q is not a topic prefix (no wildcards, not starting with $; Home Assistant's default is %q)", h.Prefix, DefaultHomeAssistantPrefix)
		return
	}
	for _, level := range strings.Split(h.Prefix, "/") {
		if level == "" {
			v.errorf("homeassistant.prefix", "%q has an empty topic level (write it without leading, trailing or double /)", h.Prefix)
			return
		}
	}
}

// haDevice checks a device's homeassistant key: a device has a name, a
// manufacturer and a model, no device class or icon of its own.
func (v *validator) haDevice(path string, h *HAEntity) {
	if h == nil || h.Hidden {
		return
	}
	v.haName(path, h)
	for _, k := range []struct{ key, val string }{{"device_class", h.DeviceClass}, {"icon", h.Icon}} {
		if k.val != "" {
			v.errorf(path+"."+k.key, "a device has no %s; set it on a point's homeassistant", k.key)
		}
	}
}

// haPoint checks a point's homeassistant key against the platform the
// point appears on.
func (v *validator) haPoint(path string, pt *Point) {
	h := pt.HomeAssistant
	if h == nil || h.Hidden {
		return
	}
	v.haName(path, h)
	for _, k := range []struct{ key, val string }{{"manufacturer", h.Manufacturer}, {"model", h.Model}} {
		if k.val != "" {
			v.errorf(path+"."+k.key, "a point has no %s; set it on the device's homeassistant", k.key)
		}
	}
	if h.DeviceClass != "" {
		platform := pt.HAPlatform()
		classes := HADeviceClasses(platform)
		if !slices.Contains(classes, h.DeviceClass) {
			hint := ""
			if s := suggest(h.DeviceClass, classes); s != "" {
				hint = " (did you mean " + `"` + s + `"?)`
			}
			v.errorf(path+".device_class", "%q is not a device class of Home Assistant's %s platform%s", h.DeviceClass, platform, hint)
		}
	}
	if h.Icon != "" {
		prefix, name, ok := strings.Cut(h.Icon, ":")
		if !ok || prefix == "" || name == "" || strings.ContainsAny(h.Icon, " \t\"") {
			v.errorf(path+".icon", "%q is not an icon name such as \"mdi:flash\"", h.Icon)
		}
	}
}

func (v *validator) haName(path string, h *HAEntity) {
	if h.Name == "" && v.set[path+".name"] {
		v.errorf(path+".name", "must not be empty (leave it out for the default name)")
	}
}

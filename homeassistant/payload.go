package homeassistant

// The JSON of a discovery config, with the full key names of Home
// Assistant's MQTT discovery documentation (no abbreviations, so that a
// person reading the retained topic understands it).

type availability struct {
	Topic         string `json:"topic"`
	ValueTemplate string `json:"value_template,omitempty"`
}

type device struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer,omitempty"`
	Model        string   `json:"model,omitempty"`
	SWVersion    string   `json:"sw_version,omitempty"`
	ViaDevice    string   `json:"via_device,omitempty"`
}

type origin struct {
	Name       string `json:"name"`
	SWVersion  string `json:"sw_version,omitempty"`
	SupportURL string `json:"support_url,omitempty"`
}

// entity is one discovery config. Platform-specific keys are empty (left
// out) where the platform has no such key.
type entity struct {
	Name             string         `json:"name"`
	UniqueID         string         `json:"unique_id"`
	StateTopic       string         `json:"state_topic"`
	ValueTemplate    string         `json:"value_template,omitempty"`
	CommandTopic     string         `json:"command_topic,omitempty"`
	Availability     []availability `json:"availability"`
	AvailabilityMode string         `json:"availability_mode"`
	Device           device         `json:"device"`
	Origin           origin         `json:"origin"`

	DeviceClass    string `json:"device_class,omitempty"`
	StateClass     string `json:"state_class,omitempty"`
	Unit           string `json:"unit_of_measurement,omitempty"`
	Precision      *int   `json:"suggested_display_precision,omitempty"`
	Icon           string `json:"icon,omitempty"`
	EntityCategory string `json:"entity_category,omitempty"`

	// binary_sensor and switch
	PayloadOn  string `json:"payload_on,omitempty"`
	PayloadOff string `json:"payload_off,omitempty"`
	StateOn    string `json:"state_on,omitempty"`
	StateOff   string `json:"state_off,omitempty"`

	// number
	Min  *float64 `json:"min,omitempty"`
	Max  *float64 `json:"max,omitempty"`
	Step *float64 `json:"step,omitempty"`
	Mode string   `json:"mode,omitempty"`

	platform string // the topic's component level, not a key
}

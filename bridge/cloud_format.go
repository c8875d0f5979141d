package bridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edged/edged/cloudauth"
	"github.com/edged/edged/telemetry"
)

// A forward rule with a format posts readings as properties of the cloud
// device, in the cloud's thing-model JSON, on its property-post topic. An
// adapter's readings are gathered per device for a moment and posted
// together (cloud_batch.go); a reading a network client publishes is posted
// alone, at once, so that its PUBACK still waits only for its own commit.

// The topics of a cloud's thing model for the device.
func (c *cloudLink) postTopic() string {
	if c.dev.Cloud == cloudauth.Aliyun {
		return "/sys/" + c.dev.Product + "/" + c.dev.Name + "/thing/event/property/post"
	}
	return "$sys/" + c.dev.Product + "/" + c.dev.Name + "/thing/property/post"
}

// eventsTopic is IoT Hub's device-to-cloud topic for a message edged
// forwards from local topic: IoT Hub takes no other, so the local topic
// travels as the message's application property "topic".
func (c *cloudLink) eventsTopic(local string) string {
	return "devices/" + c.dev.Name + "/messages/events/topic=" + url.QueryEscape(local)
}

func (c *cloudLink) setTopic() string {
	if c.dev.Cloud == cloudauth.Aliyun {
		return "/sys/" + c.dev.Product + "/" + c.dev.Name + "/thing/service/property/set"
	}
	return "$sys/" + c.dev.Product + "/" + c.dev.Name + "/thing/property/set"
}

// cloudRules gives the downlink rules with a format the cloud's set topic
// (config has checked that a format names the configured cloud), and
// leaves the gateway's status topic out where the cloud takes only the
// topics of its own model: OneNET, Aliyun and Azure close the connection
// over a publish (or a will) on any other.
func (br *Bridge) cloudRules() error {
	if br.cloud != nil && br.cloud.dev.Cloud != cloudauth.AWS {
		br.statusTopic = ""
	}
	if br.cloud != nil {
		br.clientID = br.cloud.dev.Name // what the log says; Aliyun's carries a timestamp too
	}
	for i := range br.downlink {
		r := &br.downlink[i]
		if r.format == "" {
			continue
		}
		if br.cloud == nil || br.cloud.dev.Cloud != r.format {
			return fmt.Errorf("uplink.downlink[%d].format: %q needs cloud = %q", i, r.format, r.format)
		}
		r.raw = br.cloud.setTopic()
		r.filter = strings.Split(r.raw, "/")
	}
	for i, r := range br.forward {
		if r.format != "" && (br.cloud == nil || br.cloud.dev.Cloud != r.format) {
			return fmt.Errorf("uplink.forward[%d].format: %q needs cloud = %q", i, r.format, r.format)
		}
	}
	return nil
}

// property is one property in a post: its value and when it was read, in
// milliseconds since the epoch.
type property struct {
	Value json.RawMessage `json:"value"`
	Time  int64           `json:"time"`
}

type onenetPost struct {
	ID      string              `json:"id"`
	Version string              `json:"version"`
	Params  map[string]property `json:"params"`
}

type aliyunPost struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Sys     struct {
		Ack int `json:"ack"`
	} `json:"sys"`
	Params map[string]property `json:"params"`
	Method string              `json:"method"`
}

// readingProperty finds the property a reading published on
// {…}/{device}/{point} sets: the point's name, its value and time. A
// payload without a value (a bad-quality report, a status) is not a
// reading: the thing model has no place for it (logged, rate-limited).
func (br *Bridge) readingProperty(m telemetry.Message) (string, property, bool) {
	name := m.Topic[strings.LastIndexByte(m.Topic, '/')+1:]
	val, ts, ok := readingValue(m.Payload)
	if !ok {
		if n, ok := br.topicLog.allow(time.Now()); ok {
			br.log.Info("uplink: not posting a message without a value to the cloud (a failed read, a status)",
				"topic", shortTopic(m.Topic), "more_since_last_line", n)
		}
		return "", property{}, false
	}
	if ts.IsZero() {
		ts = br.cloud.now()
	}
	return name, property{Value: val, Time: ts.UnixMilli()}, true
}

// propertyPost turns one reading into the cloud's property post.
func (br *Bridge) propertyPost(m telemetry.Message) (string, []byte, bool) {
	name, p, ok := br.readingProperty(m)
	if !ok {
		return "", nil, false
	}
	topic, b := br.cloud.post(map[string]property{name: p})
	return topic, b, true
}

// post is the cloud's property post of params, and its topic.
func (c *cloudLink) post(params map[string]property) (string, []byte) {
	id := strconv.FormatUint(c.msgID.Add(1), 10)
	var doc any = onenetPost{ID: id, Version: "1.0", Params: params}
	if c.dev.Cloud == cloudauth.Aliyun {
		doc = aliyunPost{ID: id, Version: "1.0", Params: params, Method: "thing.event.property.post"}
	}
	b, _ := json.Marshal(doc) // plain structs of strings, numbers and raw JSON checked by readingValue
	return c.postTopic(), b   // never retained: no cloud keeps a property post
}

// readingValue finds the value and time of a reading: edged's JSON payload
// {"value": …, "ts": …}, or a bare JSON value (payload = "value"). Anything
// else (a device's status, a /set/error report) is not a reading.
func readingValue(p []byte) (json.RawMessage, time.Time, bool) {
	p = bytes.TrimSpace(p)
	if len(p) == 0 {
		return nil, time.Time{}, false
	}
	if p[0] == '{' {
		var r struct {
			Value json.RawMessage `json:"value"`
			TS    string          `json:"ts"`
		}
		if json.Unmarshal(p, &r) != nil || len(r.Value) == 0 || string(r.Value) == "null" {
			return nil, time.Time{}, false
		}
		ts, _ := time.Parse(time.RFC3339Nano, r.TS)
		return r.Value, ts, true // Unmarshal copied it
	}
	if json.Valid(p) {
		// A copy: the publisher's slice may be reused while a post gathers.
		return append(json.RawMessage(nil), p...), time.Time{}, true
	}
	// Bare text: a device's status ("online"), not a reading.
	return nil, time.Time{}, false
}

// setRequest is a property-set message of OneNET or Aliyun.
type setRequest struct {
	ID     string                     `json:"id"`
	Params map[string]json.RawMessage `json:"params"`
}

// propertySet handles a message on a downlink rule's set topic: each
// property becomes a publish of its value on local_prefix + name + "/set",
// where the adapter owning the point writes it, and the cloud is answered
// on its reply topic. The code says whether edged's broker took every
// write, not whether the device did: the device's answer is the point's
// next reading (or its /set/error).
func (br *Bridge) propertySet(c mqtt.Client, m mqtt.Message) bool {
	var rule *downlinkRule
	for i := range br.downlink {
		if r := &br.downlink[i]; r.format != "" && m.Topic() == r.raw {
			rule = r
			break
		}
	}
	if rule == nil {
		return false
	}
	var req setRequest
	code, msg := 200, "success"
	if err := json.Unmarshal(m.Payload(), &req); err != nil || len(req.Params) == 0 {
		code, msg = 400, "not a property-set message with params"
		if rule.format == cloudauth.Aliyun {
			code = 460 // Aliyun's "request parameter error"
		}
		br.dlDrops.Add(1)
	}
	for name, v := range req.Params {
		topic := rule.prefix + name + "/set"
		if name == "" || strings.ContainsAny(name, "/+#\x00") {
			code, msg = 400, fmt.Sprintf("property %q is not a point name", name)
			br.dlDrops.Add(1)
			continue
		}
		if err := br.publishLocal(topic, v, rule.qos, false); err != nil {
			code, msg = 500, "the gateway refused the write of "+name
			br.dlDrops.Add(1)
			br.log.Warn("uplink: property-set write refused by the local broker", "topic", topic, "err", err)
			continue
		}
		br.downlinked.Add(1)
	}
	reply, _ := json.Marshal(setReply(rule.format, req.ID, code, msg))
	c.Publish(m.Topic()+"_reply", 0, false, reply) // not waited for: paho's callback must not block
	return true
}

func setReply(format, id string, code int, msg string) any {
	if format == cloudauth.Aliyun {
		return struct {
			ID      string   `json:"id"`
			Code    int      `json:"code"`
			Data    struct{} `json:"data"`
			Message string   `json:"message"`
			Version string   `json:"version"`
		}{ID: id, Code: code, Message: msg, Version: "1.0"}
	}
	return struct {
		ID   string `json:"id"`
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}{ID: id, Code: code, Msg: msg}
}

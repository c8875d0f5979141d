package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/edged/edged/telemetry"
)

// A device's topics are checked against each other's and against the
// uplink's rules once every section is valid on its own: two devices
// publishing on one topic is an error (a subscriber could not tell them
// apart), a forward or downlink rule that reaches none of them is a doubt
// (it may be meant for network clients, but more often the gateway id is
// not what the rule assumes).

// topic is one topic edged's own parts publish or take writes on.
type topic struct {
	name   string
	path   string // the key that makes it
	device string // the device's key path, "" for edged itself
}

// deviceTopics are the topics the configured devices publish and the ones
// they take writes on.
type deviceTopics struct {
	published []topic
	writable  []topic
	devices   int
}

// statsPoint is the point name of the gateway's own statistics topic,
// {gateway}/edged/stats.
const statsTopicDevice = "edged"

// topics lists what each device publishes and takes writes on.
func (v *validator) topics(c *Config) deviceTopics {
	gw := c.Gateway.ID
	var t deviceTopics
	pub := func(name, path, device string) {
		t.published = append(t.published, topic{name, path, device})
	}
	write := func(name, path, device string) {
		t.writable = append(t.writable, topic{name, path, device})
	}
	pub(gw+"/"+statsTopicDevice+"/stats", "gateway.id", "")
	pub(telemetry.GatewayStatusTopic(gw), "gateway.id", "")
	for i := range c.Modbus {
		for j := range c.Modbus[i].Devices {
			d := &c.Modbus[i].Devices[j]
			dp := index(index("modbus", i)+".device", j)
			t.devices++
			pub(telemetry.StatusTopic(gw, d.Name), dp+".name", dp)
			tmpl := telemetry.Template(d.Topic)
			point := func(pt *Point, path string) {
				name := tmpl.Expand(gw, d.Name, pt.Name)
				pub(name, path, dp)
				if pt.Writable {
					write(name+"/set", path, dp)
				}
			}
			own := map[string]bool{}
			for k := range d.Points {
				own[d.Points[k].Name] = true
				point(&d.Points[k], index(dp+".points", k)+".name")
			}
			if r, ok := v.profiles[d.Profile]; ok && r.p != nil {
				for k := range r.p.Points {
					if pt := &r.p.Points[k]; !own[pt.Name] {
						point(pt, dp+".profile")
					}
				}
			}
		}
	}
	groups := func(exprs []string, each func(name string)) {
		for _, e := range exprs {
			re, err := regexp.Compile(e)
			if err != nil {
				continue
			}
			for _, n := range re.SubexpNames() {
				if n != "" {
					each(n)
				}
			}
		}
	}
	for i := range c.Serial {
		s := &c.Serial[i]
		p := index("serial", i)
		t.devices++
		pub(telemetry.StatusTopic(gw, s.Name), p+".name", p)
		seen := map[string]bool{}
		groups(s.Patterns, func(n string) {
			if !seen[n] {
				seen[n] = true
				pub(telemetry.Template(s.Topic).Expand(gw, s.Name, n), p+".patterns", p)
			}
		})
		if s.Raw {
			pub(gw+"/"+s.Name+"/raw", p+".raw", p)
		}
		if s.Writable {
			write(gw+"/"+s.Name+"/tx", p+".writable", p)
		}
	}
	for i := range c.AT {
		a := &c.AT[i]
		p := index("at", i)
		t.devices++
		pub(telemetry.StatusTopic(gw, a.Name), p+".name", p)
		var exprs []string
		for _, q := range a.Queries {
			exprs = append(exprs, q.Pattern)
		}
		for _, u := range a.URCs {
			exprs = append(exprs, u.Pattern)
		}
		seen := map[string]bool{}
		groups(exprs, func(n string) {
			if !seen[n] {
				seen[n] = true
				pub(telemetry.Template(a.Topic).Expand(gw, a.Name, n), p+".queries", p)
			}
		})
		if a.RawCommands != nil && *a.RawCommands {
			write(gw+"/"+a.Name+"/at", p+".raw_commands", p)
		}
	}
	return t
}

// collisions reports a topic that two devices publish on.
func (v *validator) collisions(t deviceTopics) {
	first := map[string]topic{}
	for _, tp := range t.published {
		f, ok := first[tp.name]
		if !ok {
			first[tp.name] = tp
			continue
		}
		if f.device == tp.device {
			continue // one device, one topic (the same group in two patterns)
		}
		by := "edged's own statistics"
		if f.device != "" {
			by = f.path
		}
		v.errorf(tp.path, "publishes on %q, as %s does: a subscriber could not tell the two apart (give the devices different names or topic templates)", tp.name, by)
	}
}

// reach warns about forward rules that match nothing the devices publish
// and downlink rules whose local topics reach no writable point.
func (v *validator) reach(u *Uplink, gw string, t deviceTopics) {
	if t.devices == 0 {
		return // a broker for network clients only: nothing to compare with
	}
	idNote := fmt.Sprintf("the gateway id is %q", gw)
	if !v.set["gateway.id"] {
		idNote += ", the host name, as [gateway] id is not set"
	}
	for i, f := range u.Forward {
		filter, err := telemetry.ParseFilter(f.Local)
		if err != nil {
			continue
		}
		if !anyMatches(filter, t.published) {
			v.warnf(index("uplink.forward", i)+".local", "%q matches no topic the devices here publish (%s; they publish %s): only what network clients publish there would go upstream",
				f.Local, idNote, examples(t.published))
		}
	}
	for i, d := range u.Downlink {
		local, ok := downlinkLocal(d)
		if !ok {
			continue
		}
		filter, _ := telemetry.ParseFilter(local)
		p := index("uplink.downlink", i) + ".remote"
		if len(t.writable) == 0 {
			v.warnf(p, "commands arrive locally on %q, but no point here is writable", local)
		} else if !anyMatches(filter, t.writable) {
			v.warnf(p, "commands arrive locally on %q, which is none of the topics devices here take writes on (%s; they take %s)",
				local, idNote, examples(t.writable))
		}
	}
}

// downlinkLocal is the local topic filter a downlink rule's messages
// arrive on, when it can be told from the rule alone.
func downlinkLocal(d Downlink) (string, bool) {
	if _, err := telemetry.ParseFilter(d.Remote); err != nil {
		return "", false
	}
	lit := d.Remote
	if i := strings.IndexAny(lit, "+#"); i >= 0 {
		lit = lit[:i]
	}
	if !strings.HasPrefix(lit, d.StripPrefix) {
		return "", false // the prefix reaches into a wildcard: depends on the topic
	}
	local := d.LocalPrefix + d.Remote[len(d.StripPrefix):]
	if _, err := telemetry.ParseFilter(local); err != nil {
		return "", false
	}
	return local, true
}

// anyMatches reports whether filter matches one of the topics.
func anyMatches(filter telemetry.Filter, ts []topic) bool {
	for _, tp := range ts {
		if filter.Match(tp.name) {
			return true
		}
	}
	return false
}

// examples names up to three topics, devices' first.
func examples(ts []topic) string {
	var names []string
	for _, tp := range ts {
		if tp.device != "" && !strings.HasSuffix(tp.name, "/status") {
			names = append(names, tp.name)
		}
	}
	for _, tp := range ts {
		if tp.device != "" && strings.HasSuffix(tp.name, "/status") {
			names = append(names, tp.name)
		}
	}
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
	}
	return strings.Join(names, ", ")
}

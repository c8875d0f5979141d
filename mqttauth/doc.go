// Package mqttauth reads the two files that say who may use an MQTT
// broker and what they may do: a users file in mosquitto_passwd's format
// (Users, SetPassword) and a Mosquitto ACL file (ACL). Both parsers report
// every bad line as file:line and never turn a malformed line into access
// (CVE-2018-12551, CVE-2018-12550); pattern rules never let a client id or
// user name widen a rule (CVE-2017-7650).
//
// config parses the files while it validates edged.toml, so that `edged
// check` refuses what the broker could not use, and hands the parsed
// values to the broker. This package does no networking and knows nothing
// of mochi-mqtt: the broker's hook asks Users.Check and ACL.Allowed.
package mqttauth

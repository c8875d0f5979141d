package modbus

import (
	"encoding/json"
	"strconv"
)

func formatInt(v int64) string        { return strconv.FormatInt(v, 10) }
func formatUint(v uint64) string      { return strconv.FormatUint(v, 10) }
func jsonNumber(s string) json.Number { return json.Number(s) }

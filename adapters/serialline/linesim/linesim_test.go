package linesim

import (
	"context"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/edged/edged/adapters/serialline"
	"github.com/edged/edged/config/configtest"
	"github.com/edged/edged/internal/testpeer"
)

func TestTheRealAdapterReadsTheSimulatedSensor(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := testpeer.NewRecorder()
	dev, err := serialline.New(configtest.Serial(t, DemoDevice(port)), "demo", rec, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := testpeer.Go(t, dev.Run)

	testpeer.Eventually(t, 10*time.Second, "temperature and humidity", func() bool {
		return len(rec.On("demo/weather/temperature")) > 0 && len(rec.On("demo/weather/humidity")) > 0
	})
	if !regexp.MustCompile(`^\{"value":2[0-3](\.\d)?,"ts":"[^"]+"\}$`).MatchString(rec.Last("demo/weather/temperature")) {
		t.Errorf("temperature payload %s", rec.Last("demo/weather/temperature"))
	}
	if rec.Last("demo/weather/status") != "online" {
		t.Errorf("status %q", rec.Last("demo/weather/status"))
	}
	if err := stop(); err != nil {
		t.Error(err)
	}

	cancel()
	testpeer.Eventually(t, 10*time.Second, "the pty to go away", func() bool {
		_, err := os.Stat(port)
		return err != nil
	})
}

func TestLinesMatchTheDemoPattern(t *testing.T) {
	re := regexp.MustCompile(Pattern)
	for _, d := range []time.Duration{0, time.Minute, 7 * time.Minute, 25 * time.Hour} {
		if l := Line(d); !re.Match(l) {
			t.Errorf("line %q at %v does not match", l, d)
		}
	}
}

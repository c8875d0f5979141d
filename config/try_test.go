package config

import ("testing";"os";"fmt")

func TestTry(t *testing.T) {
	for _, f := range []string{os.Getenv("F")} {
		c, err := LoadWith(f, Options{})
		fmt.Println(err)
		if c != nil { fmt.Printf("%+v\n", *c) }
	}
}

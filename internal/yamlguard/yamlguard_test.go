package yamlguard

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// bomb is a "billion laughs" document: 9 levels of 9 aliases each stand for 9^9 (387 million) strings.
func bomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [lol]\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestCheck(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(bomb()), &n); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	err := Check(&n, MaxNodes)
	var be *BombError
	if !errors.As(err, &be) || be.Line != 2 {
		t.Fatalf("bomb: %v; want a BombError at line 2", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("checking took %s", d)
	}
	var ok yaml.Node
	if err := yaml.Unmarshal([]byte("base: &b {x: 1}\nuse: [*b, *b, *b]\n"), &ok); err != nil {
		t.Fatal(err)
	}
	if err := Check(&ok, MaxNodes); err != nil {
		t.Fatalf("a few aliases: %v", err)
	}
}

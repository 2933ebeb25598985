package yamlguard

import (
	"errors"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestCheck(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(Bomb("top")), &n); err != nil {
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

// Package yamlguard refuses YAML documents whose aliases expand to far more than they hold (an "alias bomb":
// a 10 KB file whose nested aliases stand for billions of nodes). Parsing to yaml.Node keeps aliases as
// references, which costs nothing; decoding into Go values, or walking the tree through its aliases, expands
// them. Check the parsed tree first, then decode.
package yamlguard

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxNodes is the default budget: the number of nodes a document may stand for once its aliases are
// expanded. A policy or entries file of thousands of objects stays far below it.
const MaxNodes = 200_000

// BombError says the document's aliases expand beyond the budget.
type BombError struct {
	Line int // of the first alias
	Max  int
}

func (e *BombError) Error() string {
	return fmt.Sprintf("line %d: its aliases (*name) expand to more than %d nodes: write the values out, or use fewer nested aliases", e.Line, e.Max)
}

// Check returns a *BombError when n, with every alias expanded, stands for more than max nodes. It visits
// each node once (the expanded size of an anchored node is remembered), so it is cheap on any input.
func Check(n *yaml.Node, max int) error {
	c := counter{max: max, size: map[*yaml.Node]int{}}
	if c.count(n) > max {
		return &BombError{Line: c.firstAlias, Max: max}
	}
	return nil
}

type counter struct {
	max        int
	size       map[*yaml.Node]int // expanded size of nodes already counted
	firstAlias int
}

// count is the expanded size of n, capped just above max.
func (c *counter) count(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	if s, ok := c.size[n]; ok {
		return s
	}
	c.size[n] = c.max + 1 // a cycle (an alias inside its own anchor) counts as too large
	s := 1
	if n.Kind == yaml.AliasNode {
		if c.firstAlias == 0 {
			c.firstAlias = n.Line
		}
		s += c.count(n.Alias)
	}
	for _, k := range n.Content {
		if s > c.max {
			break
		}
		s += c.count(k)
	}
	s = min(s, c.max+1)
	c.size[n] = s
	return s
}

// Bomb returns a "billion laughs" document of about 400 bytes for tests of parsers: nine levels of nine
// aliases, under the top-level key top, stand for 9^9 (387 million) strings. Its first alias is on line 2.
func Bomb(top string) string {
	var b strings.Builder
	b.WriteString(`l0: &l0 ["x","x","x","x","x","x","x","x","x"]` + "\n")
	for i := 1; i <= 9; i++ {
		key := fmt.Sprintf("l%d: &l%d", i, i)
		if i == 9 {
			key = top + ":"
		}
		prev := fmt.Sprintf("*l%d", i-1)
		b.WriteString(key + " [" + strings.Repeat(prev+",", 8) + prev + "]\n")
	}
	return b.String()
}

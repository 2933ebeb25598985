package main

import (
	"os"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Taskfile.yml parses as YAML (a flow list holding `{{…}}` once did not) and has every task the README names.
func TestTaskfileHasTheTasksTheREADMENames(t *testing.T) {
	b, err := os.ReadFile("../../Taskfile.yml")
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tasks map[string]struct {
			Cmds []any `yaml:"cmds"`
		} `yaml:"tasks"`
	}
	if err := yaml.Unmarshal(b, &tf); err != nil {
		t.Fatalf("Taskfile.yml: %v", err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile("`task ([a-z:]+)").FindAllStringSubmatch(string(readme), -1)
	if len(named) == 0 {
		t.Fatal("the README names no task: is the pattern right?")
	}
	for _, m := range named {
		if task, ok := tf.Tasks[m[1]]; !ok || len(task.Cmds) == 0 {
			t.Errorf("the README names `task %s`, which Taskfile.yml does not define (with commands)", m[1])
		}
	}
}

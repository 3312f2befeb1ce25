import Lake
open Lake DSL

package demo

@[default_target]
lean_lib Demo

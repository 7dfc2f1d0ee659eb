// Package resourcetype holds what each resource type (MSCS's Resource DLLs) makes and checks:
// the child objects of a resource on its owner node, built by pure functions, and the health
// rules that decide whether what runs is what was asked for.
package resourcetype

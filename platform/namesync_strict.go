//go:build !crashtest

package platform

const strictNames = false

//go:build !linux && !freebsd && !illumos && !solaris

package platform

func nameDurableWithSync(f *File) bool { return false }

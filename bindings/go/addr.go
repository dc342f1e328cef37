package transporturl

import (
	"net"
	"syscall"
)

// addresses reads the socket's local and peer addresses from the kernel.
func addresses(rc syscall.RawConn) (local, remote net.Addr) {
	rc.Control(func(fd uintptr) {
		typ, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TYPE)
		stream := err != nil || typ == syscall.SOCK_STREAM
		if sa, err := syscall.Getsockname(int(fd)); err == nil {
			local = sockaddrToAddr(sa, stream)
		}
		if sa, err := syscall.Getpeername(int(fd)); err == nil {
			remote = sockaddrToAddr(sa, stream)
		}
	})
	return local, remote
}

func sockaddrToAddr(sa syscall.Sockaddr, stream bool) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return ipAddr(sa.Addr[:], sa.Port, "", stream)
	case *syscall.SockaddrInet6:
		zone := ""
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return ipAddr(sa.Addr[:], sa.Port, zone, stream)
	case *syscall.SockaddrUnix:
		if stream {
			return &net.UnixAddr{Name: sa.Name, Net: "unix"}
		}
		return &net.UnixAddr{Name: sa.Name, Net: "unixgram"}
	}
	return nil
}

func ipAddr(ip []byte, port int, zone string, stream bool) net.Addr {
	a := net.IP(append([]byte(nil), ip...))
	if stream {
		return &net.TCPAddr{IP: a, Port: port, Zone: zone}
	}
	return &net.UDPAddr{IP: a, Port: port, Zone: zone}
}

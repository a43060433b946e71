package simulator

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
)

// The HTML pages a proxy in front of the API answers with.
const (
	badGatewayPage  = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	maintenancePage = "<!DOCTYPE html>\n<html lang=\"ru\"><head><meta charset=\"utf-8\"><title>Пачка: технические работы</title></head>\n<body><h1>Идут технические работы</h1><p>Scheduled maintenance, please try again later.</p></body></html>\n"
)

// injectFault answers the request with fault kind k (all but slow and
// truncate, which shape a normal answer). It returns the status written, 0
// for a reset connection.
func injectFault(w http.ResponseWriter, k string) int {
	switch k {
	case Fault500, Fault502, Fault503:
		status, _ := strconv.Atoi(k)
		if k == Fault503 {
			w.Header().Set("Retry-After", "1")
		}
		writeAPIError(w, status, errItem("", "", "unhandled", http.StatusText(status)+": injected by the simulator"))
		return status
	case Fault429:
		w.Header().Set("Retry-After", "1")
		writeAPIError(w, http.StatusTooManyRequests, errItem("", "", "rate_limit",
			"Too many requests: retry after the time given in Retry-After (injected by the simulator)"))
		return http.StatusTooManyRequests
	case FaultHTML:
		status, page := http.StatusBadGateway, badGatewayPage
		if rand.IntN(2) == 0 {
			status, page = http.StatusOK, maintenancePage
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(page))
		return status
	case FaultReset:
		conn, _, err := hijack(w)
		if err != nil {
			return 0
		}
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0) // close with RST, not FIN
		}
		_ = conn.Close()
		return 0
	}
	return 0
}

// writeTruncated sends status 200 with the Content-Length of body but only
// its first half, then closes the connection.
func writeTruncated(w http.ResponseWriter, body []byte) {
	conn, rw, err := hijack(w)
	if err != nil {
		writeJSON(w, http.StatusOK, body[:len(body)/2])
		return
	}
	defer conn.Close()
	fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n\r\n", len(body))
	_, _ = rw.Write(body[:len(body)/2])
	_ = rw.Flush()
}

func hijack(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w).Hijack()
}

// Helpers of the HTTP integration tests: JSON POSTs with the httplib client, SSE body splitting, and a raw loopback
// socket for the cases a well-behaved client cannot produce (hanging up mid-stream).
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace stepwise::test {

using nlohmann::json;

struct HttpReply {
  int status = 0;
  std::string body;
  json parsed() const { return json::parse(body); }
};

inline HttpReply post_json(int port, const std::string& path, const std::string& body, const httplib::Headers& headers = {}) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  const httplib::Result result = client.Post(path.c_str(), headers, body, "application/json");
  if (!result) return {0, "transport error: " + httplib::to_string(result.error())};
  return {result->status, result->body};
}

inline HttpReply get(int port, const std::string& path, const httplib::Headers& headers = {}) {
  httplib::Client client("127.0.0.1", port);
  const httplib::Result result = client.Get(path.c_str(), headers);
  if (!result) return {0, "transport error: " + httplib::to_string(result.error())};
  return {result->status, result->body};
}

// The JSON payloads of an SSE body "data: {...}\n\n ... data: [DONE]\n\n"; `done` tells whether [DONE] ended it.
inline std::vector<json> sse_payloads(const std::string& body, bool* done) {
  std::vector<json> payloads;
  *done = false;
  size_t start = 0;
  while (start < body.size()) {
    const size_t end = body.find("\n\n", start);
    EXPECT_NE(end, std::string::npos) << "unterminated SSE event";
    if (end == std::string::npos) break;
    const std::string event = body.substr(start, end - start);
    start = end + 2;
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    EXPECT_FALSE(*done) << "event after [DONE]";
    const std::string data = event.substr(6);
    if (data == "[DONE]") *done = true;
    else payloads.push_back(json::parse(data));
  }
  return payloads;
}

// A plain TCP connection to 127.0.0.1:port that writes a raw HTTP request and reads whatever comes back.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(uint16_t(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawConnection() { close(); }
  bool connected() const { return connected_; }

  // `extra_headers`: complete lines, each ending in "\r\n".
  void send_post(const std::string& path, const std::string& body, const std::string& extra_headers = "") {
    const std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                                extra_headers + "Content-Length: " + std::to_string(body.size()) +
                                "\r\nConnection: close\r\n\r\n" + body;
    ASSERT_EQ(::send(fd_, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
  }
  // Reads until `needle` has arrived (true) or the peer closed (false).
  bool read_until(const std::string& needle) {
    char buffer[4096];
    while (received_.find(needle) == std::string::npos) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return false;
      received_.append(buffer, size_t(n));
    }
    return true;
  }
  const std::string& received() const { return received_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  bool connected_ = false;
  std::string received_;
};

}  // namespace stepwise::test

// imcli: a terminal chat client on the SDK, and a newcomer's first conversation with the cluster.
//   imcli --token "$(imctl token --uid alice)"
// Type /help for the commands; a line without a leading '/' is sent to the open conversation.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_join.h"
#include "sdk/client.h"
#include "sdk/sqlite_state_store.h"

namespace {

using im::sdk::Client;

constexpr char kHelp[] =
    "commands:\n"
    "  /list                      conversations with unread counts\n"
    "  /open <conv id | uid>      open a conversation (a uid opens the single chat with it)\n"
    "  /history [n]               the last n messages (default 20) of the open conversation\n"
    "  /read                      mark the open conversation read\n"
    "  /recall <seq>              take back a message of the open conversation\n"
    "  /edit <seq> <text>         replace a message's text\n"
    "  /typing                    tell the others you are typing\n"
    "  /readers <seq>             who in the open group has read a message\n"
    "  /presence [uid...]         watch who is online (no uid: stop watching)\n"
    "  /group create <name> [uid...]   /group join <id>   /group leave <id>   /group members <id>\n"
    "  /state                     connection state\n"
    "  /quit\n"
    "  <text>                     send to the open conversation\n";

// Prints from the network thread and the input thread without interleaving lines.
class Console : public im::sdk::ClientListener {
 public:
  void Print(const std::string& line) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::cout << line << std::endl;
  }

  void OnStateChanged(im::sdk::ConnectionState state, const im::sdk::Status& reason) override {
    Print("* " + std::string(im::sdk::ConnectionStateName(state)) +
          (reason.message.empty() ? "" : " (" + reason.message + ")"));
  }
  void OnMessages(const std::string& conv_id,
                  const std::vector<im::sdk::Message>& messages) override {
    for (const im::sdk::Message& message : messages) Print(Format(message));
    std::lock_guard<std::mutex> lock(mutex_);
    newest_[conv_id] = messages.back().seq;
  }
  void OnSendResult(const im::sdk::SendResult& result) override {
    if (!result.status.ok()) {
      Print("! not sent (" + std::to_string(result.status.code) + " " + result.status.message +
            ")");
    }
  }
  void OnTyping(const im::sdk::TypingNotice& notice) override {
    Print("  " + notice.uid + " is typing in " + notice.conv_id);
  }
  void OnReadReceipt(const im::sdk::ReadReceipt& receipt) override {
    Print("  " + receipt.reader + " read " + receipt.conv_id + " up to #" +
          std::to_string(receipt.read_seq));
  }
  void OnPresence(const std::vector<im::sdk::Presence>& presences) override {
    for (const im::sdk::Presence& presence : presences) Print("  " + Format(presence));
  }

  static std::string Format(const im::sdk::Message& message) {
    const std::string head =
        "[" + message.conv_id + "] #" + std::to_string(message.seq) + " " + message.sender;
    if (message.type == im::sdk::kMessageRecall) {
      return head + " recalled #" + std::to_string(message.ref_seq);
    }
    if (message.type == im::sdk::kMessageEdit) {
      return head + " edited #" + std::to_string(message.ref_seq) + ": " + message.body;
    }
    if (message.recalled) return head + ": (recalled)";
    return head + ": " + message.body + (message.edited_ms != 0 ? " (edited)" : "");
  }
  static std::string Format(const im::sdk::Presence& presence) {
    if (presence.online) {
      std::vector<std::string> devices;
      for (size_t i = 0; i < presence.devices.size(); ++i) {
        const std::string& platform = presence.platforms[i];
        devices.push_back(presence.devices[i] + (platform.empty() ? "" : " on " + platform));
      }
      return presence.uid + " is online (" + absl::StrJoin(devices, ", ") + ")";
    }
    if (presence.last_seen_ms == 0) return presence.uid + " is offline";
    const std::time_t seen = static_cast<std::time_t>(presence.last_seen_ms / 1000);
    char when[32];
    std::tm local{};
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&seen, &local));
    return presence.uid + " is offline, last seen " + when;
  }
  uint64_t newest(const std::string& conv_id) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = newest_.find(conv_id);
    return it == newest_.end() ? 0 : it->second;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, uint64_t> newest_;
};

std::string SingleChat(const std::string& a, const std::string& b) {
  return "s:" + std::min(a, b) + ":" + std::max(a, b);
}

std::string Describe(const im::sdk::Status& status) {
  return status.ok() ? "ok" : "error " + std::to_string(status.code) + " " + status.message;
}

void RunGroupCommand(Client& client, Console& console, std::istringstream& args) {
  std::string verb, id;
  args >> verb >> id;
  if (verb == "create" && !id.empty()) {
    std::vector<std::string> members;
    for (std::string uid; args >> uid;) members.push_back(uid);
    client.CreateGroup(id, members, [&console](im::sdk::Status status, im::sdk::GroupCreated g) {
      console.Print(status.ok() ? "group " + g.group_id + " created: /open " + g.conv_id
                                : "create: " + Describe(status));
    });
  } else if (verb == "join" && !id.empty()) {
    client.JoinGroup(id, {}, [&console, id](im::sdk::Status status) {
      console.Print("join " + id + ": " + Describe(status) +
                    (status.ok() ? ", /open g:" + id : ""));
    });
  } else if (verb == "leave" && !id.empty()) {
    client.LeaveGroup(id, "", [&console, id](im::sdk::Status status) {
      console.Print("leave " + id + ": " + Describe(status));
    });
  } else if (verb == "members" && !id.empty()) {
    client.ListGroupMembers(
        id, [&console](im::sdk::Status status, std::vector<im::sdk::GroupMember> members) {
          if (!status.ok()) return console.Print("members: " + Describe(status));
          for (const im::sdk::GroupMember& member : members) {
            console.Print("  " + member.uid +
                          (member.role == 3   ? " (owner)"
                           : member.role == 2 ? " (admin)"
                                              : ""));
          }
        });
  } else {
    console.Print("usage: /group create <name> [uid...] | join <id> | leave <id> | members <id>");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"imcli: a terminal chat client for the IM cluster"};
  im::sdk::ClientOptions options;
  options.gateways = {"127.0.0.1:7000", "127.0.0.1:7001"};
  options.device = "imcli";
  options.platform = "cli";
  std::string db_path;
  bool verbose = false;
  app.add_option("--gateway", options.gateways,
                 "gateway host:port, or tls://host:port for its TLS port (repeatable)");
  app.add_option("--tls-ca", options.tls.ca_file,
                 "PEM file of the CAs to trust for tls:// gateways");
  app.add_option("--tls-pin", options.tls.pinned_keys,
                 "trust a tls:// gateway by its key alone: sha256/<base64> (repeatable)");
  app.add_option("--tls-server-name", options.tls.server_name,
                 "the name a tls:// gateway's certificate must carry (default: its host)");
  app.add_option("--token", options.token, "login token (imctl token --uid <you>)")->required();
  app.add_option("--device", options.device, "device name (one connection per device)");
  app.add_option("--db", db_path, "SQLite file keeping cursors and unsent messages");
  app.add_flag("--verbose", verbose, "log the SDK's connection events");
  CLI11_PARSE(app, argc, argv);

  Console console;
  if (verbose) {
    options.log = [&console](int, const std::string& line) { console.Print("  sdk: " + line); };
  }
  std::unique_ptr<im::sdk::StateStore> store;
  if (!db_path.empty()) {
    auto opened = im::sdk::SqliteStateStore::Open(db_path);
    if (!opened.ok()) {
      std::fprintf(stderr, "imcli: %s\n", opened.status().ToString().c_str());
      return 1;
    }
    store = std::move(*opened);
  }
  Client client(options, &console, std::move(store));
  if (client.uid().empty()) {
    std::fprintf(stderr, "imcli: the token does not name a user\n");
    return 2;
  }
  console.Print("imcli as " + client.uid() + "; /help for commands");
  client.Start();

  std::string open;
  for (std::string line; std::getline(std::cin, line);) {
    if (line.empty()) continue;
    if (line[0] != '/') {
      if (open.empty()) {
        console.Print("open a conversation first: /open <uid or conv id>");
      } else {
        client.Send(open, line);
      }
      continue;
    }
    std::istringstream args(line.substr(1));
    std::string command;
    args >> command;
    if (command == "quit" || command == "q") break;
    if (command == "help") {
      console.Print(kHelp);
    } else if (command == "state") {
      console.Print(im::sdk::ConnectionStateName(client.state()));
    } else if (command == "list") {
      client.ListConversations([&console](im::sdk::Status status,
                                          std::vector<im::sdk::Conversation> list) {
        if (!status.ok()) return console.Print("list: " + Describe(status));
        if (list.empty()) console.Print("no conversations yet");
        for (const im::sdk::Conversation& item : list) {
          console.Print("  " + item.conv_id + "  unread " + std::to_string(item.unread) +
                        "  last #" + std::to_string(item.max_seq) +
                        (item.last_message.conv_id.empty()
                             ? ""
                             : "  " + item.last_message.sender + ": " + item.last_message.body));
        }
      });
    } else if (command == "open") {
      std::string target;
      args >> target;
      open = target.rfind("s:", 0) == 0 || target.rfind("g:", 0) == 0
                 ? target
                 : SingleChat(client.uid(), target);
      console.Print("open: " + open);
    } else if (command == "history" && !open.empty()) {
      uint32_t count = 20;
      args >> count;
      client.LoadHistory(open, 0, count,
                         [&console](im::sdk::Status status, im::sdk::HistoryPage page) {
                           if (!status.ok()) return console.Print("history: " + Describe(status));
                           for (const im::sdk::Message& message : page.messages) {
                             console.Print(Console::Format(message));
                           }
                         });
    } else if (command == "read" && !open.empty()) {
      client.MarkRead(open, console.newest(open),
                      [&console](im::sdk::Status status, uint64_t read_seq) {
                        console.Print(status.ok() ? "read up to #" + std::to_string(read_seq)
                                                  : "read: " + Describe(status));
                      });
    } else if (command == "recall" && !open.empty()) {
      uint64_t seq = 0;
      args >> seq;
      client.Recall(open, seq);  // the outcome comes as OnSendResult
    } else if (command == "edit" && !open.empty()) {
      uint64_t seq = 0;
      args >> seq;
      std::string text;
      std::getline(args >> std::ws, text);
      client.Edit(open, seq, text);
    } else if (command == "readers" && !open.empty()) {
      uint64_t seq = 0;
      args >> seq;
      client.ListReaders(open, seq, true,
                         [&console, seq](im::sdk::Status status, im::sdk::GroupReaders readers) {
                           if (!status.ok()) return console.Print("readers: " + Describe(status));
                           std::string names;
                           for (const std::string& uid : readers.readers) names += " " + uid;
                           console.Print("#" + std::to_string(seq) + " read by " +
                                         std::to_string(readers.read_count) + ", not yet by " +
                                         std::to_string(readers.unread_count) + ":" + names);
                         });
    } else if (command == "presence") {
      std::vector<std::string> uids;
      for (std::string uid; args >> uid;) uids.push_back(uid);
      // The states follow through OnPresence, and every change after them.
      client.WatchPresence(uids, [&console, stop = uids.empty()](im::sdk::Status status,
                                                                 im::sdk::WatchedPresence watched) {
        if (!status.ok()) return console.Print("presence: " + Describe(status));
        if (stop) return console.Print("presence: stopped watching");
        for (const std::string& uid : watched.refused) {
          console.Print("  " + uid + ": not watched (no conversation with you)");
        }
      });
    } else if (command == "typing" && !open.empty()) {
      client.Typing(open);
    } else if (command == "group") {
      RunGroupCommand(client, console, args);
    } else {
      console.Print(kHelp);
    }
  }
  return 0;
}

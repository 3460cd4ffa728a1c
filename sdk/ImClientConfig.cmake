# The installed client SDK for find_package(ImClient): the imported target ImClient::imclient
# (libimclient.so, and the include directory of <im/im_client.h>). Installed by sdk/CMakeLists.txt.
include("${CMAKE_CURRENT_LIST_DIR}/ImClientTargets.cmake")

#include <cstdio>

int main() {
  std::puts("tyto: no runtime yet");
  return 0;
}

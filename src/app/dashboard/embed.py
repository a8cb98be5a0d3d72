#!/usr/bin/env python3
"""Turns the dashboard page into a C++ source defining tyto::app::dashboard_page() (a raw string).

Usage: embed.py dashboard.html dashboard_page.cpp"""
import sys

DELIMITER = "tyto_page"


def main():
    source, output = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8") as file:
        page = file.read()
    if ")" + DELIMITER + '"' in page:
        sys.exit("embed.py: the page contains the raw string's delimiter")
    with open(output, "w", encoding="utf-8") as file:
        file.write("// Generated from src/app/dashboard/dashboard.html by embed.py: edit that file.\n")
        file.write('#include "tyto/app/dashboard.hpp"\n\n')
        file.write("namespace tyto::app {\n\n")
        file.write("std::string_view dashboard_page() noexcept {\n")
        file.write('  static constexpr char page[] = R"%s(%s)%s";\n' % (DELIMITER, page, DELIMITER))
        file.write("  return {page, sizeof page - 1};\n}\n\n}  // namespace tyto::app\n")


if __name__ == "__main__":
    main()

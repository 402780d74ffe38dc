"""A launch template's own tags are not part of its launch data.

AWS (EC2 API reference, CreateLaunchTemplate): the request's ``TagSpecifications`` ("The tags to
apply to the launch template on creation"; resource type ``launch-template``) tag the template
itself; only ``LaunchTemplateData.TagSpecifications`` (tags for the instances and volumes it
launches) are launch data, returned by DescribeLaunchTemplateVersions.

moto 5.2.5 copies the request's ``TagSpecifications`` into the first version's launch data. The
Terraform provider (``aws_launch_template`` with ``tags``) then reads back a
``tag_specifications { resource_type = "launch-template" }`` block it did not configure, plans
a new version on every plan, and the consumers module's instance refresh starts on every apply.
"""

from __future__ import annotations

from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

OWN_TAGS = "ec2-launch-template-own-tags"


def own_tags() -> list[Replacement]:
    """AWS (EC2 API reference, CreateLaunchTemplate): its ``TagSpecifications`` tag the template,
    not its launch data. moto 5.2.5 appends them to ``LaunchTemplateData.TagSpecifications``.
    Replaces ``LaunchTemplates.create_launch_template`` with moto's steps, minus that copy."""
    from moto.core.responses import ActionResult
    from moto.ec2.responses.launch_templates import LaunchTemplates
    from moto.ec2.utils import parse_user_data

    expect(LaunchTemplates, "create_launch_template")
    expect(LaunchTemplates, "_parse_tag_specification")
    expect(LaunchTemplates, "error_on_dryrun")

    def create_launch_template(self: Any) -> Any:
        name = self._get_param("LaunchTemplateName")
        description = self._get_param("VersionDescription")
        tag_spec = self._parse_tag_specification()
        data = self._get_param("LaunchTemplateData", {})
        data["UserData"] = parse_user_data(self._get_param("LaunchTemplateData.UserData"))
        self.error_on_dryrun()
        template = self.ec2_backend.create_launch_template(name, description, data, tag_spec)
        version = template.default_version()
        return ActionResult(
            {
                "LaunchTemplate": {
                    "CreateTime": version.create_time,
                    "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                    "DefaultVersionNumber": template.default_version_number,
                    "LatestVersionNumber": version.number,
                    "LaunchTemplateId": template.id,
                    "LaunchTemplateName": template.name,
                    "Tags": template.tags,
                }
            }
        )

    return [Replacement(LaunchTemplates, "create_launch_template", create_launch_template)]


PATCHES: list[Patch] = [
    Patch(
        OWN_TAGS,
        "CreateLaunchTemplate's TagSpecifications tag the template, not its launch data",
        own_tags,
    ),
]

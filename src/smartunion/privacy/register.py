"""Consent purposes and the record of processing activities (个人信息处理活动记录).

Written in code so that the register the data protection officer reads is the one the
system enforces; the page adds live counts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Purpose:
    key: str
    version: str
    title: str
    text: str
    needs_consent: bool  # False: processing rests on the union's legal duties, not consent
    separate_consent: bool = False  # 单独同意 (PIPL 第二十三条: giving data to a third party)


PURPOSES: dict[str, Purpose] = {
    p.key: p
    for p in [
        Purpose(
            "membership",
            "2026.1",
            "会籍管理",
            "为办理入会、转会、会员卡和会费管理，工会处理您的姓名、身份证号、手机号、工作单位等信息。",
            needs_consent=False,
        ),
        Purpose(
            "services",
            "2026.1",
            "会员服务与通知",
            "向您推送普惠服务、活动通知和帮扶政策。您可随时撤回。",
            needs_consent=True,
        ),
        Purpose(
            "analytics",
            "2026.1",
            "统计分析与服务推荐",
            "以去标识化方式统计分析会员需求，并为您推荐可能需要的服务。结果仅以不少于10人的群体发布。",
            needs_consent=True,
        ),
        Purpose(
            "bank_card",
            "2026.1",
            "联名会员卡（向合作银行提供信息）",
            "向合作银行提供您的姓名、身份证号和手机号以办理联名会员卡。此项需您单独同意。",
            needs_consent=True,
            separate_consent=True,
        ),
    ]
}


@dataclass(frozen=True)
class Activity:
    name: str
    purpose: str
    categories: str
    legal_basis: str
    retention: str
    recipients: str
    measures: str


REGISTER: list[Activity] = [
    Activity(
        "会员信息管理",
        "会籍管理、会员服务",
        "姓名、性别、出生日期、公民身份号码、手机号码、民族、学历、工作单位、职业、技能等级、用工形式",
        "《工会法》规定的职责（个人信息保护法第十三条第一款第三项）；服务与统计另经同意",
        "会籍存续期间；退会后三年匿名化",
        "本会及上级工会；经单独同意的合作银行",
        "身份证号与手机号 AES-256-GCM/SM4 加密存储、盲索引检索、默认脱敏、按组织范围授权、读取审计",
    ),
    Activity(
        "账号与登录",
        "身份鉴别与访问控制",
        "用户名、口令散列、TOTP 密钥（加密）、登录时间与地址",
        "履行网络安全保护义务（网络安全法第二十一条）",
        "账号存续期间；会话记录 30 天",
        "无",
        "argon2id 口令散列、双因子认证、失败锁定、会话超时",
    ),
    Activity(
        "安全审计",
        "追溯个人信息访问与变更",
        "操作人、时间、操作、对象编号（不含敏感明文）",
        "网络安全法第二十一条（日志留存不少于六个月）",
        "长期保存（链式防篡改）",
        "审计员、安全管理员",
        "HMAC 链式封存、外部检查点",
    ),
    Activity(
        "数据导出",
        "工作需要的名册导出",
        "会员名册（默认脱敏）",
        "履行职责所必需；超过阈值或明文导出经第二人审批",
        "导出记录保存三年",
        "申请人本人",
        "审批、水印、公式注入防护、配额、审计",
    ),
    Activity(
        "统计发布",
        "决策分析与工作报告",
        "聚合计数（不含个人）",
        "去标识化统计",
        "随报告",
        "上级工会与党政部门",
        "不少于10人的分组阈值、互补抑制、可选差分隐私",
    ),
]

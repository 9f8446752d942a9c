// Labels of the web app: Simplified Chinese by default, English switchable (kept in
// localStorage). Every visible string goes through `t`.
import { signal } from "./state";

export type Lang = "zh-CN" | "en";

const zh = {
  app_title: "区域诊断中心",
  login: "登录",
  logout: "退出",
  login_name: "账号",
  password: "密码",
  totp: "动态验证码",
  totp_needed: "请输入动态验证码",
  login_failed: "登录失败",
  totp_enrol: "绑定动态验证码",
  totp_enrol_hint: "请用身份验证器应用添加以下密钥，然后输入显示的验证码。",
  confirm: "确认",
  worklist: "工作列表",
  tab_mine: "我的",
  tab_queue: "待读队列",
  tab_overdue: "已超时",
  next: "下一个",
  next_hint: "快捷键 N",
  claim: "领取",
  release: "释放",
  priority: "优先级",
  due: "剩余时间",
  patient: "患者",
  exam: "检查",
  institution: "来源机构",
  modality: "类型",
  state: "状态",
  nothing: "没有项目",
  nothing_queued: "队列中没有可领取的项目",
  overdue: "超时",
  language: "English",
  live: "实时",
  offline: "连接中断，重连中…",
  stat: "危急",
  urgent: "加急",
  routine: "常规",
  st_queued: "待领取",
  st_claimed: "阅读中",
  st_drafted: "草稿",
  st_submitted: "待审核",
  st_returned: "已退回",
  st_signed: "已签发",
  st_cancelled: "已取消",
  reports: "诊断报告",
  critical_value: "危急值",
  ack_name: "接收人姓名",
  ack_action: "处置措施",
  acknowledge: "确认接收",
  recognition: "检查结果互认查询",
  patient_id: "患者ID / 身份证号",
  lookup: "查询",
  hr: "互认",
  study_date: "检查日期",
  conclusion: "结论",
  signed_at: "签发时间",
  pdf: "PDF报告",
  loading: "加载中…",
  layout: "导联排列",
  speed: "走纸速度",
  gain: "增益",
  caliper: "测量尺",
  caliper_hint: "在图上点击两处",
  hr_bpm: "心率",
  axis: "电轴",
  saved: "已保存",
  submitted_ok: "已提交审核",
  signed_ok: "已签发，签名指纹",
  normal_fill: "正常模板",
  machine_value: "机测值",
  value: "数值",
  edited: "已修改，原值",
  qc_grade: "质控等级",
  qc_acceptable: "合格",
  qc_unacceptable: "不合格",
  qc_jia: "甲级",
  qc_yi: "乙级",
  qc_bing: "丙级",
  save: "保存",
  submit: "提交",
  sign: "签发",
  pdf_preview: "PDF预览",
  reauth_hint: "签发需再次验证身份：请输入密码和动态验证码。",
  preset_lung: "肺窗",
  preset_mediastinum: "纵隔窗",
  preset_bone: "骨窗",
  preset_brain: "脑窗",
  preset_abdomen: "腹部窗",
  tool_WindowLevel: "窗宽窗位",
  tool_Length: "长度",
  tool_Angle: "角度",
  tool_RectangleROI: "矩形ROI",
  invert: "反相",
  reset: "复位",
  slice: "层",
  shortcuts: "快捷键",
  sc_next: "领取下一个待读项目",
  sc_scroll: "上一层 / 下一层",
  sc_invert: "反相",
  sc_reset: "复位图像",
  sc_help: "显示或隐藏本帮助",
  sc_close: "关闭帮助",
};

const en: Record<keyof typeof zh, string> = {
  app_title: "Diagnostic centre",
  login: "Log in",
  logout: "Log out",
  login_name: "Login",
  password: "Password",
  totp: "One-time code",
  totp_needed: "Enter your one-time code",
  login_failed: "Login failed",
  totp_enrol: "Set up your one-time codes",
  totp_enrol_hint: "Add this key to your authenticator app, then enter the code it shows.",
  confirm: "Confirm",
  worklist: "Worklist",
  tab_mine: "Mine",
  tab_queue: "Queue",
  tab_overdue: "Overdue",
  next: "Next",
  next_hint: "shortcut N",
  claim: "Claim",
  release: "Release",
  priority: "Priority",
  due: "Due in",
  patient: "Patient",
  exam: "Exam",
  institution: "Source",
  modality: "Modality",
  state: "State",
  nothing: "No items",
  nothing_queued: "Nothing queued to claim",
  overdue: "overdue",
  language: "中文",
  live: "live",
  offline: "disconnected, reconnecting…",
  stat: "STAT",
  urgent: "urgent",
  routine: "routine",
  st_queued: "queued",
  st_claimed: "reading",
  st_drafted: "draft",
  st_submitted: "submitted",
  st_returned: "returned",
  st_signed: "signed",
  st_cancelled: "cancelled",
  reports: "Reports",
  critical_value: "Critical value",
  ack_name: "Received by",
  ack_action: "Action taken",
  acknowledge: "Acknowledge",
  recognition: "Recognised results lookup",
  patient_id: "Patient ID / resident ID",
  lookup: "Look up",
  hr: "HR",
  study_date: "Study date",
  conclusion: "Conclusion",
  signed_at: "Signed",
  pdf: "PDF",
  loading: "Loading…",
  layout: "Layout",
  speed: "Speed",
  gain: "Gain",
  caliper: "Calipers",
  caliper_hint: "click twice on the trace",
  hr_bpm: "Heart rate",
  axis: "Axis",
  saved: "Saved",
  submitted_ok: "Submitted for verification",
  signed_ok: "Signed, fingerprint",
  normal_fill: "Normal",
  machine_value: "Machine value",
  value: "Value",
  edited: "edited, machine said",
  qc_grade: "QC grade",
  qc_acceptable: "acceptable",
  qc_unacceptable: "unacceptable",
  qc_jia: "grade A (甲)",
  qc_yi: "grade B (乙)",
  qc_bing: "grade C (丙)",
  save: "Save",
  submit: "Submit",
  sign: "Sign",
  pdf_preview: "PDF preview",
  reauth_hint: "Signing needs your password and one-time code again.",
  preset_lung: "Lung",
  preset_mediastinum: "Mediastinum",
  preset_bone: "Bone",
  preset_brain: "Brain",
  preset_abdomen: "Abdomen",
  tool_WindowLevel: "W/L",
  tool_Length: "Length",
  tool_Angle: "Angle",
  tool_RectangleROI: "Rect ROI",
  invert: "Invert",
  reset: "Reset",
  slice: "slice",
  shortcuts: "Shortcuts",
  sc_next: "take the next queued item",
  sc_scroll: "previous / next slice",
  sc_invert: "invert",
  sc_reset: "reset the image",
  sc_help: "show or hide this help",
  sc_close: "close the help",
};

export type Key = keyof typeof zh;

const stored = (() => {
  try {
    return localStorage.getItem("dxhub.lang");
  } catch {
    return null;
  }
})();
export const lang = signal<Lang>(stored === "en" ? "en" : "zh-CN");

export function setLang(l: Lang) {
  lang.set(l);
  document.documentElement.lang = l;
  try {
    localStorage.setItem("dxhub.lang", l);
  } catch {
    /* private mode: the choice lasts for the page */
  }
}

export function t(k: Key): string {
  return (lang.get() === "en" ? en : zh)[k];
}

/// "2 h 05 min" / "2小时05分"; negative → overdue by that much.
export function duration(seconds: number): string {
  const s = Math.abs(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const body =
    lang.get() === "en"
      ? h > 0
        ? `${h} h ${String(m).padStart(2, "0")} min`
        : `${m} min`
      : h > 0
        ? `${h}小时${String(m).padStart(2, "0")}分`
        : `${m}分`;
  return seconds < 0 ? `${t("overdue")} ${body}` : body;
}
